"""Ingestion: the S3 drop folder → SQS (with a dead-letter queue) → the ``ingest`` function.

``incoming/{tenant}/{items|interactions}/*.csv`` ObjectCreated events go to a queue so that failures
are retried and, after ``MAX_RECEIVES``, parked in the DLQ; the function reports per-record failures
(``batchItemFailures``) so one bad file never replays a whole batch.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.constructs.grants import grant_objects, grant_table
from cdk.constructs.pipeline import Pipeline
from cdk.constructs.runtime import FunctionRuntime
from cdk.constructs.storage import Storage
from functions.common import deployment, resources

MAX_RECEIVES = 5
BATCH_SIZE = 5
INGEST_TABLES_READ_WRITE: tuple[resources.TableSpec, ...] = (
    resources.UPLOADS,
    resources.EVENT_IDS,
    resources.RECENT_EVENTS,
    resources.TENANTS,  # marks a tenant's first data (``has_data``), which enables its schedule
    resources.ANALYTICS,  # attribution of dropped interactions to recommendations
)
INGEST_TABLES_READ: tuple[resources.TableSpec, ...] = (resources.AB_TESTS,)


class Ingestion(Construct):
    """The drop-folder queue, its DLQ, the S3 notification and the ``ingest`` function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: FunctionRuntime,
        storage: Storage,
        pipeline: Pipeline,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DropFolderDlq",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "DropFolderQueue",
            # AWS guidance for Lambda event sources: visibility >= 6x the function timeout.
            visibility_timeout=Duration.seconds(6 * deployment.INGEST.timeout_s),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVES, queue=self.dead_letter_queue
            ),
        )
        storage.data_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=resources.DROP_FOLDER_PREFIX, suffix=".csv"),
        )

        self.function: lambda_.Function = runtime.function(
            self, deployment.INGEST, environment=pipeline.schedule_environment()
        )
        # Every accepted batch of interactions reconciles the tenant's retraining schedule (its first data
        # switches it on; a schedule that is missing is created again).
        pipeline.grant_schedules(self.function, ("GetSchedule", "CreateSchedule", "UpdateSchedule"))
        self.function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=BATCH_SIZE, report_batch_item_failures=True)
        )
        for spec in INGEST_TABLES_READ_WRITE:
            grant_table(self.function, storage.table(spec), spec, write=True)
        for spec in INGEST_TABLES_READ:
            grant_table(self.function, storage.table(spec), spec, write=False)
        # Reads the dropped file, writes raw/ + catalog/ Parquet and the reports, may delete superseded raw.
        grant_objects(self.function, storage.data_bucket, ("read", "write", "delete"))
