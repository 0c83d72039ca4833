"""The local event-source mapping: deliver the drop-folder queue's S3 notifications to ``ingest``.

In AWS an SQS event source mapping does this; locally a thread long-polls the same queue on moto.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from embedrec_local.runner import Invoker

log = logging.getLogger("embedrec.local.drop_folder")
_BATCH = 10


class DropFolderPoller:
    """Long-polls a queue and invokes the ingest function with SQS events until stopped."""

    def __init__(self, runner: Invoker, queue_url: str, queue_arn: str, region: str) -> None:
        self._runner = runner
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._sqs = boto3.client("sqs", region_name=region)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drop-folder", daemon=True)

    def start(self) -> None:
        """Start polling in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current poll."""
        self._stop.set()
        self._thread.join(timeout=5)

    def poll_once(self, wait_seconds: int = 1) -> int:
        """Receive one batch and deliver it; returns how many messages were handled successfully."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=_BATCH, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(message) for message in messages]}
        try:
            result = self._runner.invoke("ingest", event) or {}
        except Exception:  # a failed invocation: SQS redelivers the batch after its visibility timeout
            log.exception("drop-folder ingest invocation failed; the messages stay queued")
            return 0
        failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(done)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3],
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError):
                log.exception("drop-folder poll failed; retrying")
                self._stop.wait(1.0)
