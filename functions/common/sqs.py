"""Sending one JSON message to an SQS queue, shared by the queues' repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from functions.common.errors import EmbedrecError, ServiceUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS's message size limit we hold to (256 KiB): a larger body is refused by SQS.
MAX_MESSAGE_BYTES: Final = 256 * 1024


def send_json(
    client: SQSClient, queue_url: str, message: BaseModel, queue: str, too_large: type[EmbedrecError]
) -> None:
    """Queue ``message`` as JSON on the ``queue`` queue. ``too_large`` when it is over SQS's limit (nothing
    sent); ``ServiceUnavailableError`` when it was not (or may not have been) queued."""
    body = message.model_dump_json()
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        raise too_large(f"the {queue} message is {len(body)} bytes, over SQS's limit")
    try:
        client.send_message(QueueUrl=queue_url, MessageBody=body)
    except (ClientError, BotoCoreError) as exc:
        raise ServiceUnavailableError(f"the {queue} queue is unavailable") from exc
