"""The impressions queue (SQS): one ``SendMessage`` per serving invocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from functions.analytics.deliveries import ImpressionMessage
from functions.common.errors import ServiceUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS's message size limit (256 KiB; a larger body is refused, so it is applied directly instead).
MAX_MESSAGE_BYTES = 256 * 1024


class ImpressionQueue:
    """Sends handed-off impressions to the queue the ``impressions`` consumer reads."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: ImpressionMessage) -> None:
        """Queue ``message``; raises ``ServiceUnavailableError`` when it was not (or may not have been)."""
        body = message.model_dump_json()
        if len(body.encode()) > MAX_MESSAGE_BYTES:
            raise ServiceUnavailableError(f"the impressions message is {len(body)} bytes, over SQS's limit")
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailableError("the impressions queue is unavailable") from exc
