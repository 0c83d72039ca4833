"""The ``impressions`` function: the impressions queue's consumer (an SQS event source mapping).

Each invocation gets a batch of messages, each what one serving invocation handed off
(``functions.analytics.deliveries``). They are applied together, counter rows merged across messages,
each part exactly once (``functions.analytics.store.deliveries``). Messages that could not be applied
are reported as ``batchItemFailures`` (the mapping has ``ReportBatchItemFailures``): SQS redelivers
only those, and after ``IMPRESSIONS_QUEUE.max_receives`` parks them in the dead-letter queue, which an
alarm watches. A body that is not a valid message is reported the same way (it lands in the DLQ).

The batch is not handed to Powertools' ``process_partial_response``: that applies record by record,
and merging the counter rows of many messages into one write each is the point of this consumer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.analytics import telemetry
from functions.analytics.deliveries import ImpressionMessage
from functions.analytics.store.deliveries import DeliveryWriter
from functions.common import aws
from functions.common.container import per_container
from functions.common.observability import logger
from functions.common.settings import StorageSettings


@per_container
def get_impressions_settings() -> StorageSettings:
    """The consumer's settings (the analytics table's name), read from the environment once per container."""
    return StorageSettings()  # type: ignore[call-arg]  # values come from the environment


def _writer() -> DeliveryWriter:
    # Cheap: the client is the container's cached one.
    return DeliveryWriter(aws.dynamodb_client(), get_impressions_settings().analytics_table)


def apply_messages(writer: DeliveryWriter, bodies: dict[str, str], now: datetime) -> list[str]:
    """Apply the messages (SQS message id -> body); returns the ids of those to deliver again."""
    messages: dict[str, ImpressionMessage] = {}
    failed: list[str] = []
    for message_id, body in bodies.items():
        try:
            messages[message_id] = ImpressionMessage.model_validate_json(body)
        except ValidationError as exc:
            logger.error("not an impressions message", extra={"message_id": message_id, "error": str(exc)})
            failed.append(message_id)
    not_applied = writer.apply(list(messages.values()), now)
    failed.extend(
        message_id for message_id, message in messages.items() if message.delivery_id in not_applied
    )
    return failed


@logger.inject_lambda_context
def handle_impressions(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:  # noqa: ARG001
    """Entry point: apply a batch of handed-off impressions; report the messages to retry."""
    bodies = {record.message_id: record.body for record in SQSEvent(event).records}
    writer = _writer()
    failed = apply_messages(writer, bodies, datetime.now(UTC))
    telemetry.impression_messages(
        applied=len(bodies) - len(failed), failed=len(failed), write_units=writer.write_units
    )
    failures: list[PartialItemFailures] = [{"itemIdentifier": message_id} for message_id in failed]
    return {"batchItemFailures": failures}
