"""The events queue (SQS): one ``SendMessage`` per ``POST /api/v1/interactions`` with JSON events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from functions.common.errors import PayloadTooLargeError, ServiceUnavailableError
from functions.ingestion.event_messages import EventMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS's message size limit we hold to (256 KiB): a larger request's rows are stored directly.
MAX_MESSAGE_BYTES: Final = 256 * 1024


class EventQueue:
    """Sends a request's accepted events to the queue the ``compact-events`` function reads."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: EventMessage) -> None:
        """Queue ``message``. ``PayloadTooLargeError`` when it is over SQS's limit (nothing sent);
        ``ServiceUnavailableError`` when it was not (or may not have been) queued."""
        body = message.model_dump_json()
        if len(body.encode()) > MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(f"the events message is {len(body)} bytes, over SQS's limit")
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailableError("the events queue is unavailable") from exc
