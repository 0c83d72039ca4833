"""Console: the web console's static files in S3, behind CloudFront together with the API.

One CloudFront distribution gives the console and the API one origin, so the console's relative
``/api/...`` calls need no CORS: ``/console/*`` comes from the private bucket (origin access control),
everything else goes to the HTTP API uncached. The api function serves the same files at ``/console``
too (locally and without CloudFront); this is the CDN path for deployments.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk.aws_apigatewayv2 import HttpApi
from constructs import Construct

from cdk import names

CONSOLE_SOURCE = names.ROOT / "functions" / "api" / "console"


class Console(Construct):
    """The console bucket, its deployment and the distribution in front of console and API."""

    def __init__(
        self, scope: Construct, construct_id: str, *, http_api: HttpApi, access_logs: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="console/",
            removal_policy=RemovalPolicy.RETAIN,  # like every bucket of the stack (docs/deploy.md, destroy)
        )
        api_domain = Fn.select(2, Fn.split("/", http_api.api_endpoint))
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="embedrec console and API",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.HttpOrigin(
                    api_domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            ),
            additional_behaviors={
                "/console/*": cloudfront.BehaviorOptions(
                    origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
                ),
            },
            default_root_object="",
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            enable_logging=True,
            log_bucket=access_logs,
            log_file_prefix="cloudfront/",
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[s3deploy.Source.asset(str(CONSOLE_SOURCE))],
            destination_bucket=self.bucket,
            destination_key_prefix="console/",
            distribution=self.distribution,
            distribution_paths=["/console/*"],
        )
        Validations.of(self.distribution).acknowledge(
            Acknowledgment(
                id="AwsSolutions-CFR1", reason="Shops and their customers are worldwide; no geo restriction."
            ),
            Acknowledgment(
                id="AwsSolutions-CFR2",
                reason="The API authenticates and throttles every call "
                "itself (API Gateway stage throttling, per-plan quotas); WAF is an opt-in cost.",
            ),
            Acknowledgment(
                id="AwsSolutions-CFR4",
                reason="The default CloudFront certificate is used until "
                "a custom domain is configured; the minimum protocol is TLS 1.2 (2021) "
                "where CloudFront can enforce it.",
            ),
        )
        # CDK's BucketDeployment custom resource (a stack singleton) copies the files at deploy time.
        copier_reason = (
            "CDK's BucketDeployment copies the console from the CDK asset bucket into the console bucket "
            "(object wildcards on those two buckets only) and invalidates the distribution (CloudFront "
            "invalidations have no resource-level permissions)."
        )
        bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        evidence = (
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Resource::*",
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            f"Resource::<{bucket_id}.Arn>/*",
        )
        Validations.of(deployment.handler_role).acknowledge(
            *(
                Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{item}]", reason=copier_reason)
                for item in evidence
            )
        )
