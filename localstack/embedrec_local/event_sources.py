"""The local SQS event source mapping: deliver a queue's messages to a function, as Lambda's poller does.

In AWS an event source mapping long-polls the queue, invokes the function with a batch (an SQS event
of the real shape), deletes what succeeded (``batchItemFailures`` names what did not) and leaves the
rest to come back after the visibility timeout. Locally a thread of the stack's process does the same
on moto, invoking the function by its handler string through the stack's invoker (in-process, or a
Lambda-faithful container). One deviation, for a quick local loop: a failed message is made visible
again after ``retry_delay_s`` instead of the queue's visibility timeout (minutes).

``drain`` delivers until the queue is empty (nothing visible, nothing in flight): the local stack
calls it before answering the api function (``drain_before_api``), so analytics reads see every response
served before them and a training job or an erasure every event accepted before it; tests call it
where they read counters or stored events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from embedrec_local.provision import LocalNames
from embedrec_local.runner import Invoker
from functions.common import deployment, resources

log = logging.getLogger("embedrec.local.event_sources")
_DRAIN_TIMEOUT_S = 30.0
_LOCAL_WINDOW_CAP_S = 1.0


class SqsEventSource:
    """Polls one queue and invokes one function with batches of its messages until stopped."""

    def __init__(
        self,
        runner: Invoker,
        function_name: str,
        queue_url: str,
        queue_arn: str,
        region: str,
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        retry_delay_s: int = 1,
        batching_window_s: float = 0.0,
    ) -> None:
        self._runner = runner
        self._function = function_name
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        # Like the mapping, a batch gathers several ReceiveMessage answers (each at most 10 messages)
        # until it is full or, once it holds a message, ``batching_window_s`` has passed.
        self._batch_size = batch_size
        self._batching_window_s = batching_window_s
        self._wait_seconds = wait_seconds
        self._retry_delay_s = retry_delay_s
        self._sqs = boto3.client("sqs", region_name=region)
        self._stop = threading.Event()
        self._draining = 0  # drains running: a batch waiting out its window goes now
        self._draining_lock = threading.Lock()
        self._enabled = threading.Event()  # the mapping's ``Enabled`` (UpdateEventSourceMapping)
        self._enabled.set()
        self._polling = threading.Lock()  # held by the background poll while it receives and delivers
        self._thread = threading.Thread(target=self._run, name=f"sqs-{function_name}", daemon=True)

    def start(self) -> None:
        """Start polling in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current poll."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """Receive one batch and deliver it; returns how many messages were handled successfully.

        The background poll waits out the batching window; ``drain`` (``wait_seconds=0``) takes what
        is there.
        """
        waiting = wait_seconds is None
        messages = self._receive(self._wait_seconds if wait_seconds is None else wait_seconds)
        if not messages:
            return 0
        window_ends = time.monotonic() + (self._batching_window_s if waiting else 0.0)
        while len(messages) < self._batch_size:
            more = self._receive(0)
            if more:
                messages += more
            elif time.monotonic() < window_ends and not self._draining:
                self._stop.wait(min(0.05, window_ends - time.monotonic()))
            else:
                break
        event = {"Records": [sqs_record(message, self._queue_arn) for message in messages]}
        try:
            result = self._runner.invoke(self._function, event) or {}
            failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
        except Exception:  # a failed invocation: SQS redelivers the whole batch
            log.exception("%s invocation failed; the messages stay queued", self._function)
            failed = {message["MessageId"] for message in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        for start in range(0, len(messages), 10):  # the batch calls take at most 10 entries
            if chunk := done[start : start + 10]:
                self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                    ],
                )
            if chunk := retry[start : start + 10]:
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": self._retry_delay_s,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
        return len(done)

    def _receive(self, wait_seconds: int) -> list[Any]:
        messages: list[Any] = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(self._batch_size, 10),  # ReceiveMessage's limit
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def pending(self) -> int:
        """Messages queued or in flight (received, not yet deleted)."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def drain(self, timeout_s: float = _DRAIN_TIMEOUT_S) -> bool:
        """Deliver until nothing is queued or in flight; False when ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._draining_lock:
            self._draining += 1
        try:
            while self.pending():
                if time.monotonic() > deadline:
                    log.warning("%s: queue not drained within %.0f s", self._function, timeout_s)
                    return False
                if not self.poll_once(wait_seconds=0):
                    time.sleep(0.02)  # what is left is in flight on the poller thread (or waits for a retry)
            return True
        finally:
            with self._draining_lock:
                self._draining -= 1

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable the background polling, as ``UpdateEventSourceMapping(Enabled=...)`` does.
        Disabling returns once a poll in progress has delivered what it received (at most its long
        poll and window, about 2 s); ``drain`` still delivers (the local stack's reads see every message)."""
        if enabled:
            self._enabled.set()
            return
        self._enabled.clear()
        with self._polling:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._enabled.wait(0.1):
                continue
            try:
                with self._polling:
                    if self._enabled.is_set():  # not disabled between the wait and the lock
                        self.poll_once()
            except (BotoCoreError, ClientError):
                log.exception("%s: poll failed; retrying", self._function)
                self._stop.wait(1.0)


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received SQS message (as ``ReceiveMessage`` returns it) as a record of Lambda's SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def impressions_event_source(runner: Invoker, names: LocalNames, region: str) -> SqsEventSource:
    """The impressions queue delivered to the ``impressions`` function, as its event source mapping does."""
    spec = resources.IMPRESSIONS_QUEUE
    return SqsEventSource(
        runner,
        deployment.IMPRESSIONS.name,
        names.queue_url(spec, region),
        names.queue_arn(spec, region),
        region,
        batch_size=spec.batch_size,  # the mapping's batch and window (cdk/constructs/analytics.py)
        batching_window_s=min(spec.batching_window_s, _LOCAL_WINDOW_CAP_S),
    )


def events_event_source(runner: Invoker, names: LocalNames, region: str) -> SqsEventSource:
    """The events queue delivered to the ``compact-events`` function, as its event source mapping does."""
    spec = resources.EVENTS_QUEUE
    return SqsEventSource(
        runner,
        deployment.COMPACT_EVENTS.name,
        names.queue_url(spec, region),
        names.queue_arn(spec, region),
        region,
        batch_size=spec.batch_size,  # the mapping's batch (cdk/constructs/events.py)
        # The mapping waits up to its window for a fuller batch; locally a second is enough (the stack
        # drains the queue before each api request, which takes what is there without waiting).
        batching_window_s=min(spec.batching_window_s, _LOCAL_WINDOW_CAP_S),
    )


#: Requests that only add events: the events queue is not drained before them, so a stream of them
#: is compacted in batches by the poller, as in AWS (any other api request drains it first).
_EVENT_POSTS = frozenset({("POST", "/api/v1/interactions")})


def drain_before_api(impressions: SqsEventSource, events: SqsEventSource) -> Callable[[str, str], None]:
    """What the local stack runs before an api request (method, path): both queues delivered, except
    the events queue before another events post."""

    def drain(method: str, path: str) -> None:
        impressions.drain()
        if (method.upper(), path.rstrip("/")) not in _EVENT_POSTS:
            events.drain()

    return drain
