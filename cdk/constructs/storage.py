"""Storage: every DynamoDB table, S3 bucket and SQS queue, built from ``functions.common.resources`` specs.

The embedded local stack provisions from the same specs, so keys, indexes, TTL and redelivery cannot
drift.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import names
from functions.common import resources

_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _attribute(key: resources.Key) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


def _construct_id(logical_name: str) -> str:
    return "".join(part.capitalize() for part in logical_name.split("_"))


class Storage(Construct):
    """Tables (on-demand, PITR, TTL per spec) and buckets (private, TLS-only, encrypted, logged)."""

    def __init__(self, scope: Construct, construct_id: str, *, retain_data: bool = True) -> None:
        super().__init__(scope, construct_id)
        self.removal_policy = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.tables: dict[str, dynamodb.Table] = {
            spec.logical_name: self._table(spec) for spec in resources.TABLES
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=self.removal_policy,
            auto_delete_objects=not retain_data,
        )
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the server access log bucket itself; logging it into itself would loop.",
            )
        )
        self.data_bucket = self._bucket(
            resources.DATA_BUCKET,
            versioned=False,
            lifecycle_rules=[
                # The drop folder keeps files (and their reports) for inspection, not forever.
                s3.LifecycleRule(
                    id="expire-incoming",
                    prefix=resources.DROP_FOLDER_PREFIX,
                    expiration=Duration.days(names.INCOMING_EXPIRY_DAYS),
                ),
                # Training snapshots are reproducible from raw/; keep them long enough to debug a run.
                s3.LifecycleRule(
                    id="expire-datasets",
                    prefix=names.DATASETS_PREFIX,
                    expiration=Duration.days(names.DATASETS_EXPIRY_DAYS),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        self.artifacts_bucket = self._bucket(
            resources.ARTIFACTS_BUCKET,
            # Artifacts are immutable once written; versioning keeps an accidental overwrite recoverable.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent",
                    noncurrent_version_expiration=Duration.days(names.NONCURRENT_VERSION_EXPIRY_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        self.buckets: dict[str, s3.Bucket] = {
            resources.DATA_BUCKET.logical_name: self.data_bucket,
            resources.ARTIFACTS_BUCKET.logical_name: self.artifacts_bucket,
        }
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.queues: dict[str, sqs.Queue] = {
            spec.logical_name: self._queue(spec) for spec in resources.QUEUES
        }

    def table(self, spec: resources.TableSpec) -> dynamodb.Table:
        """The table built from ``spec``."""
        return self.tables[spec.logical_name]

    def queue(self, spec: resources.QueueSpec) -> sqs.Queue:
        """The queue built from ``spec``."""
        return self.queues[spec.logical_name]

    def dead_letter_queue(self, spec: resources.QueueSpec) -> sqs.Queue:
        """The dead-letter queue of the queue built from ``spec``."""
        return self.dead_letter_queues[spec.logical_name]

    def environment(self) -> dict[str, str]:
        """The env vars naming every table and bucket, and every queue's URL (``spec.env_var``)."""
        env = {spec.env_var: self.table(spec).table_name for spec in resources.TABLES}
        env.update({spec.env_var: self.buckets[spec.logical_name].bucket_name for spec in resources.BUCKETS})
        env.update({spec.env_var: self.queue(spec).queue_url for spec in resources.QUEUES})
        return env

    def _queue(self, spec: resources.QueueSpec) -> sqs.Queue:
        construct_id = _construct_id(spec.logical_name)
        dead_letters = sqs.Queue(
            self,
            f"{construct_id}Dlq",
            retention_period=Duration.days(spec.dlq_retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.dead_letter_queues[spec.logical_name] = dead_letters
        return sqs.Queue(
            self,
            f"{construct_id}Queue",
            visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
            retention_period=Duration.days(spec.retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=spec.max_receives, queue=dead_letters),
        )

    def _table(self, spec: resources.TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            f"{_construct_id(spec.logical_name)}Table",
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=self.removal_policy,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    def _bucket(
        self, spec: resources.BucketSpec, *, versioned: bool, lifecycle_rules: list[s3.LifecycleRule]
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            f"{_construct_id(spec.logical_name)}Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=versioned,
            lifecycle_rules=lifecycle_rules,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{spec.logical_name}/",
            removal_policy=self.removal_policy,
            auto_delete_objects=self.removal_policy == RemovalPolicy.DESTROY,
        )
