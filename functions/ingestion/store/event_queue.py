"""The events queue (SQS): one ``SendMessage`` per ``POST /api/v1/interactions`` with JSON events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.common.errors import PayloadTooLargeError
from functions.common.sqs import send_json
from functions.ingestion.event_messages import EventMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class EventQueue:
    """Sends a request's accepted events to the queue the ``compact-events`` function reads."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: EventMessage) -> None:
        """Queue ``message``. ``PayloadTooLargeError`` when it is over SQS's limit (nothing sent);
        ``ServiceUnavailableError`` when it was not (or may not have been) queued. A request over the limit
        has its rows stored directly."""
        send_json(self._client, self._queue_url, message, "events", PayloadTooLargeError)
