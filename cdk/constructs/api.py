"""API: the HTTP API, the ``api`` and ``serving`` functions, and the secrets only ``api`` reads.

Routing comes from ``functions.common.routes.SERVING_ROUTES`` (the local stack routes from it too):
those paths go to ``serving`` (any method; it answers 405 itself), everything else under ``/api/*``
plus ``/docs`` and ``/openapi.json`` goes to ``api``. Authentication is done by the functions (JWT,
API keys). HTTP APIs have no usage plans, so per-tenant quotas by plan are enforced by the functions
(``functions.identity.plans.PLAN_RATES``: one DynamoDB token bucket per tenant that every container of
``api`` and ``serving`` leases from). The stage's throttling is the cluster-wide ceiling, sized from the
same plan table and the expected tenants per plan (context ``embedrec:tenantsByPlan``;
``plans.stage_limit``), never below the largest plan. ``throttle_route`` overrides it for one route.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk import names
from cdk.constructs.grants import grant_objects, grant_table
from cdk.constructs.pipeline import Pipeline
from cdk.constructs.runtime import FunctionRuntime
from cdk.constructs.storage import Storage
from functions.common import deployment, resources
from functions.common.routes import SERVING_ROUTES
from functions.identity.models import Plan
from functions.identity.plans import stage_limit

# What each function may touch (least privilege; serving writes only impression counters).
API_TABLES_READ_WRITE: tuple[resources.TableSpec, ...] = resources.TABLES
SERVING_TABLES_READ: tuple[resources.TableSpec, ...] = (
    resources.MODEL_REGISTRY,
    resources.RECENT_EVENTS,
    resources.API_KEYS,  # API-key authentication of recommendation calls
    resources.TENANTS,
    resources.AB_TESTS,  # variant assignment
)
SERVING_TABLES_READ_WRITE: tuple[resources.TableSpec, ...] = (
    resources.ANALYTICS,  # impressions and per-response attribution records
    resources.EVENT_IDS,  # the tenants' shared request budgets (quota#{tenant}), leased per container
)

_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "method": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """Access-log settings of a stage (``IAccessLogSettings`` is an interface, not a struct, in Python)."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        """Where the access logs go."""
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        """One JSON line per request."""
        return self._format


class Api(Construct):
    """HTTP API → ``api`` / ``serving`` functions, throttled and access-logged.

    Secrets: ``api`` reads both (JWT key, admin key); ``serving`` reads only the JWT key, to verify tokens.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: FunctionRuntime,
        storage: Storage,
        pipeline: Pipeline,
        tenants_by_plan: Mapping[Plan, int] | None = None,
        serving_size: deployment.ServingSize = deployment.SERVING_SIZES[deployment.DEFAULT_SERVING_SIZE],
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage_limit = stage_limit(tenants_by_plan)
        self.jwt_secret = self._secret("JwtSecret", "embedrec: HS256 signing key of access tokens")
        self.admin_key = self._secret("AdminKey", "embedrec: platform-admin credential (creates tenants)")

        self.api_function = runtime.function(
            self,
            deployment.API,
            environment={
                names.ENV_JWT_SECRET_ARN: self.jwt_secret.secret_arn,
                names.ENV_ADMIN_KEY_ARN: self.admin_key.secret_arn,
                **pipeline.schedule_environment(),
            },
        )
        # Serving verifies access tokens itself (functions/serving/settings.py requires the JWT key).
        self.serving_size = serving_size
        self.serving_function = runtime.function(
            self,
            deployment.serving_spec(serving_size),
            environment={
                names.ENV_JWT_SECRET_ARN: self.jwt_secret.secret_arn,
                names.ENV_MODEL_BUDGET_MB: str(serving_size.model_budget_mb),
            },
        )
        # The API invokes the current published version through an alias: SnapStart restores only published
        # versions (the small size), and the alias carries the provisioned containers (the larger sizes).
        self.serving_alias = runtime.live_alias(
            self, deployment.SERVING, self.serving_function, provisioned=serving_size.provisioned
        )
        self._grant_api(storage, pipeline)
        self._grant_serving(storage)

        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description="embedrec: management API and real-time recommendations",
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=self.stage_limit.rate_per_s, burst_limit=self.stage_limit.burst
            ),
            access_log_settings=_AccessLogSettings(
                apigwv2.LogGroupLogDestination(access_logs), apigw.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)
            ),
        )
        self._add_routes()
        Validations.of(self.http_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="Authentication is done by the functions themselves (JWT bearer tokens and "
                "hashed API keys, see the README), identically on the local stack; /health and "
                "/docs are public.",
            )
        )
        CfnOutput(self, "ApiUrl", value=self.stage.url, description="Base URL of the embedrec API")

    def throttle_route(self, route_key: str, *, rate_limit: float, burst_limit: int) -> None:
        """Override the stage throttling for one route (``"POST /api/v1/recommendations"``); issue 8 seam."""
        stage = self.stage.node.default_child
        assert isinstance(stage, apigwv2.CfnStage)
        stage.add_property_override(
            f"RouteSettings.{route_key}",
            {"ThrottlingRateLimit": rate_limit, "ThrottlingBurstLimit": burst_limit},
        )

    def _add_routes(self) -> None:
        serving = integrations.HttpLambdaIntegration("Serving", self.serving_alias)
        api = integrations.HttpLambdaIntegration("Api", self.api_function)
        for path in dict.fromkeys(path for _method, path in SERVING_ROUTES):
            self.http_api.add_routes(path=path, methods=[apigwv2.HttpMethod.ANY], integration=serving)
        self.http_api.add_routes(
            path=names.API_PROXY_ROUTE, methods=[apigwv2.HttpMethod.ANY], integration=api
        )
        for path in names.DOCS_ROUTES:
            self.http_api.add_routes(path=path, methods=[apigwv2.HttpMethod.GET], integration=api)

    def _secret(self, construct_id: str, description: str) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id,
            description=description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )
        Validations.of(secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Rotation needs a dual-key window in the token/admin checks (not built yet); the "
                "functions re-read the secret every 5 minutes, so a manual rotation takes effect without "
                "a deploy.",
            )
        )
        return secret

    def _grant_api(self, storage: Storage, pipeline: Pipeline) -> None:
        function = self.api_function
        for spec in API_TABLES_READ_WRITE:
            grant_table(function, storage.table(spec), spec, write=True)
        # Uploads (raw/, catalog/, reports/), presigned drop-folder URLs (incoming/).
        grant_objects(function, storage.data_bucket, ("read", "write", "delete"))
        # Model manifests for GET /api/v1/models; artifacts are written only by training.
        grant_objects(function, storage.artifacts_bucket, ("read",), (names.MODELS_PREFIX,))
        self.jwt_secret.grant_read(function)
        self.admin_key.grant_read(function)
        pipeline.state_machine.grant_start_execution(function)
        pipeline.grant_describe_executions(function)
        # Tenants' retraining schedules: created with the tenant, enabled with its first data, removed.
        pipeline.grant_schedules(
            function, ("CreateSchedule", "UpdateSchedule", "DeleteSchedule", "GetSchedule")
        )

    def _grant_serving(self, storage: Storage) -> None:
        function: lambda_.Function = self.serving_function
        for spec in SERVING_TABLES_READ:
            grant_table(function, storage.table(spec), spec, write=False)
        for spec in SERVING_TABLES_READ_WRITE:
            grant_table(function, storage.table(spec), spec, write=True)
        grant_objects(function, storage.artifacts_bucket, ("read",), (names.MODELS_PREFIX,))
        # Popular items of tenants without a model yet (catalog/{tenant}/popular.json); nothing else of data.
        grant_objects(function, storage.data_bucket, ("read",), (names.CATALOG_PREFIX,))
        self.jwt_secret.grant_read(function)
