"""The impressions queue (SQS): one ``SendMessage`` per serving invocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.analytics.deliveries import ImpressionMessage
from functions.common.errors import ServiceUnavailableError
from functions.common.sqs import send_json

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class ImpressionQueue:
    """Sends handed-off impressions to the queue the ``impressions`` consumer reads."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: ImpressionMessage) -> None:
        """Queue ``message``; raises ``ServiceUnavailableError`` when it was not (or may not have been)."""
        # a message over SQS's limit is not queued either: the caller applies it directly instead
        send_json(self._client, self._queue_url, message, "impressions", ServiceUnavailableError)
