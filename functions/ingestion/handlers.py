"""The ``compact-events`` function: the events queue's consumer (an SQS event source mapping).

Each invocation gets a batch of messages, each one ``POST /api/v1/interactions`` request's accepted
events (``functions.ingestion.event_messages``), and stores them as one Parquet object and one upload
record per tenant, each request exactly once (``functions.ingestion.compaction``). Messages that could
not be stored are reported as ``batchItemFailures`` (the mapping has ``ReportBatchItemFailures``): SQS
redelivers only those, and after ``EVENTS_QUEUE.max_receives`` parks them in the dead-letter queue,
which an alarm watches. A body that is not a valid message is reported the same way.

The batch is not handed to Powertools' ``process_partial_response``: that handles record by record,
and writing the whole batch as one object is the point of this consumer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.common import aws
from functions.common.container import per_container
from functions.common.observability import MetricUnit, logger, metrics
from functions.common.settings import StorageSettings
from functions.ingestion.compaction import EventCompactor
from functions.ingestion.event_messages import EventMessage
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import RecentEventsRepository
from functions.ingestion.store.uploads import UploadRepository


@per_container
def get_compactor_settings() -> StorageSettings:
    """The consumer's settings (uploads and recent-events tables, data bucket), once per container."""
    return StorageSettings()  # type: ignore[call-arg]  # values come from the environment


@per_container
def _compactor() -> EventCompactor:
    settings = get_compactor_settings()
    return EventCompactor(
        DataStore(aws.s3_client(), settings.data_bucket),
        UploadRepository(aws.dynamodb_resource().Table(settings.uploads_table)),
        RecentEventsRepository(
            aws.dynamodb_client(),
            settings.recent_events_table,
            timedelta(days=settings.recent_events_ttl_days),
        ),
    )


def compact_messages(compactor: EventCompactor, bodies: dict[str, str], now: datetime) -> list[str]:
    """Store the messages (SQS message id -> body); returns the ids of those to deliver again."""
    messages: dict[str, EventMessage] = {}
    failed: list[str] = []
    for message_id, body in bodies.items():
        try:
            messages[message_id] = EventMessage.model_validate_json(body)
        except ValidationError as exc:
            logger.error("not an events message", extra={"message_id": message_id, "error": str(exc)})
            failed.append(message_id)
    retry = compactor.compact(list(messages.values()), now)
    failed.extend(message_id for message_id, message in messages.items() if message.upload_id in retry)
    return failed


@logger.inject_lambda_context
@metrics.log_metrics
def handle_event_batches(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:  # noqa: ARG001
    """Entry point: store a batch of handed-off events; report the messages to retry."""
    bodies = {record.message_id: record.body for record in SQSEvent(event).records}
    failed = compact_messages(_compactor(), bodies, datetime.now(UTC))
    metrics.add_metric(name="EventMessagesCompacted", unit=MetricUnit.Count, value=len(bodies) - len(failed))
    if failed:
        metrics.add_metric(name="EventMessagesRetried", unit=MetricUnit.Count, value=len(failed))
    failures: list[PartialItemFailures] = [{"itemIdentifier": message_id} for message_id in failed]
    return {"batchItemFailures": failures}
