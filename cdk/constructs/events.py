"""Real-time events: the ``compact-events`` consumer of the events queue (an SQS event source mapping).

``POST /api/v1/interactions`` with JSON events hands each request's accepted rows off as one SQS message
(``functions/ingestion/compaction.py``) instead of writing a Parquet object, a report and a record per
request. The mapping gathers up to the queue spec's ``batch_size`` messages or ``batching_window_s`` of
them (Lambda also stops at a 6 MB batch), and the consumer writes each tenant's share of a batch as ONE
object under ``raw/`` and ONE upload record, each request exactly once. It reports the messages it could
not store (``ReportBatchItemFailures``), so only those come back; after the spec's ``max_receives`` they
are parked in the dead-letter queue, which a monitoring alarm watches.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import names
from cdk.constructs.grants import grant_objects, grant_table
from cdk.constructs.runtime import FunctionRuntime
from cdk.constructs.storage import Storage
from functions.common import deployment, resources

SPEC = resources.EVENTS_QUEUE


class EventCompaction(Construct):
    """The events compactor, its event source mapping and its grants."""

    def __init__(
        self, scope: Construct, construct_id: str, *, runtime: FunctionRuntime, storage: Storage
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue: sqs.Queue = storage.queue(SPEC)
        self.dead_letter_queue: sqs.Queue = storage.dead_letter_queue(SPEC)
        self.consumer: lambda_.Function = runtime.function(self, deployment.COMPACT_EVENTS)
        self.consumer.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=SPEC.batch_size,
                max_batching_window=Duration.seconds(SPEC.batching_window_s),
                report_batch_item_failures=True,
            )
        )
        # Claims on the requests' records and the batch's own record.
        grant_table(self.consumer, storage.table(resources.UPLOADS), resources.UPLOADS, write=True)
        # Erasure markers in the shoppers' feeds: events of a shopper erased meanwhile are dropped.
        grant_table(
            self.consumer, storage.table(resources.RECENT_EVENTS), resources.RECENT_EVENTS, write=False
        )
        # One object per tenant and batch, under raw/ only.
        grant_objects(self.consumer, storage.data_bucket, ("write",), (names.RAW_PREFIX,))

    def grant_send(self, function: lambda_.IFunction) -> None:
        """Let ``function`` (api) hand off events: ``sqs:SendMessage`` on the queue, nothing else."""
        self.queue.grant(function, "sqs:SendMessage")
