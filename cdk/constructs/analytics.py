"""Analytics: the ``impressions`` consumer of the impressions queue (an SQS event source mapping).

Serving hands off each invocation's impressions as one SQS message (``functions/analytics/impressions.py``)
instead of writing a dozen rows before its handler may return. The mapping gathers up to the queue
spec's ``batch_size`` messages or ``batching_window_s`` of them (the local poller reads the same
spec), and the consumer applies them with counter rows merged
across messages, each exactly once (``functions/analytics/deliveries.py``). It reports the messages it
could not apply (``ReportBatchItemFailures``), so only those come back; after the queue spec's
``max_receives`` they are parked in the dead-letter queue, which a monitoring alarm watches.

``MAX_CONCURRENCY`` keeps few consumer transactions in flight at once: they all add to the tenants' day
rows, and concurrent transactions on one item cancel each other (the consumer retries, but fewer
collisions mean fewer retries). A burst waits in the queue instead; the lag it adds to the counters
is seconds.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.constructs.grants import grant_table
from cdk.constructs.runtime import FunctionRuntime
from cdk.constructs.storage import Storage
from functions.common import deployment, resources

MAX_CONCURRENCY = 2  # the least an SQS event source allows


class Analytics(Construct):
    """The impressions consumer, its event source mapping and its grants."""

    def __init__(
        self, scope: Construct, construct_id: str, *, runtime: FunctionRuntime, storage: Storage
    ) -> None:
        super().__init__(scope, construct_id)
        spec = resources.IMPRESSIONS_QUEUE
        self.queue: sqs.Queue = storage.queue(spec)
        self.dead_letter_queue: sqs.Queue = storage.dead_letter_queue(spec)
        self.consumer: lambda_.Function = runtime.function(self, deployment.IMPRESSIONS)
        self.consumer.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=spec.batch_size,
                max_batching_window=Duration.seconds(spec.batching_window_s),
                report_batch_item_failures=True,
                max_concurrency=MAX_CONCURRENCY,
            )
        )
        grant_table(self.consumer, storage.table(resources.ANALYTICS), resources.ANALYTICS, write=True)

    def grant_send(self, function: lambda_.IFunction) -> None:
        """Let ``function`` (serving) hand off impressions: ``sqs:SendMessage`` on the queue, nothing else."""
        self.queue.grant(function, "sqs:SendMessage")
