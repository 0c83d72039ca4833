"""Impressions handed off through the queue: one message per flush, applied once, nothing lost.

Serving's buffer sends one SQS message per flush; the ``impressions`` consumer (invoked by its handler
string with SQS events of the real shape, as the event source mapping does) writes the response rows
and counter rows. A redelivered message, a message queued although SendMessage failed, and a message
applied half-way all end with every count exactly once.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from embedrec_local.event_sources import SqsEventSource, impressions_event_source
from embedrec_local.provision import LocalNames
from embedrec_local.runner import LambdaRunner
from functions.analytics import keys
from functions.analytics.deliveries import ImpressionMessage, parts_of
from functions.analytics.impressions import ImpressionBuffer, ImpressionHandoff
from functions.analytics.reports import analytics_summary
from functions.analytics.store.counters import AnalyticsCounters
from functions.analytics.store.deliveries import DeliveryWriter
from functions.analytics.store.impressions_queue import ImpressionQueue
from functions.common import resources
from functions.common.errors import ServiceUnavailableError
from tests.functional.conftest import sqs_batch

NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
TENANT = "t_queue"


class QueuedThenFailed(ImpressionQueue):
    """SendMessage that queued the message but answered with an error (a timeout after the write)."""

    def __init__(self, inner: ImpressionQueue) -> None:
        self._inner = inner

    def send(self, message: ImpressionMessage) -> None:
        self._inner.send(message)
        raise ServiceUnavailableError("the impressions queue is unavailable")


class FailingTransactions:
    """A DynamoDB client whose transactions after the first ``succeed`` are throttled."""

    def __init__(self, inner: Any, succeed: int) -> None:
        self._inner = inner
        self._left = succeed

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self._left <= 0:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems"
            )
        self._left -= 1
        return self._inner.transact_write_items(**kwargs)


def _counters(aws_env: LocalNames) -> AnalyticsCounters:
    return AnalyticsCounters(boto3.client("dynamodb"), aws_env.table(resources.ANALYTICS))


def _writer(aws_env: LocalNames, client: Any = None) -> DeliveryWriter:
    return DeliveryWriter(
        client or boto3.client("dynamodb"), aws_env.table(resources.ANALYTICS), sleep=lambda _s: None
    )


def _queue(aws_env: LocalNames) -> ImpressionQueue:
    return ImpressionQueue(boto3.client("sqs"), aws_env.queue_url(resources.IMPRESSIONS_QUEUE))


def _totals(counters: AnalyticsCounters) -> dict[str, float]:
    """The day's totals as the summary reads them: the sum of the day's shard rows."""
    totals = analytics_summary(counters, TENANT, days=1, now=NOW).totals
    return {"responses": totals.responses, "impressions": totals.impressions}


def _queued(aws_env: LocalNames) -> list[dict[str, Any]]:
    """Every message in the queue (received and made visible again at once)."""
    sqs = boto3.client("sqs")
    url = aws_env.queue_url(resources.IMPRESSIONS_QUEUE)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    )
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return messages


def _invoke(event: dict[str, Any]) -> Any:
    """Invoke the consumer by its handler string, as the event source mapping does."""
    return LambdaRunner().invoke("impressions", event)


def _sqs_event(*bodies: str) -> dict[str, Any]:
    return sqs_batch("arn:aws:sqs:us-east-1:123456789012:embedrec-impressions", *bodies)


def test_a_flush_is_one_message_and_the_consumer_writes_rows_and_counters(
    aws_env: LocalNames, impressions: SqsEventSource
) -> None:
    counters = _counters(aws_env)
    buffer = ImpressionBuffer(counters, handoff=ImpressionHandoff(_queue(aws_env), _writer(aws_env)))

    # Given two responses served and flushed at the end of the invocation
    first = buffer.add(TENANT, ["a", "b"], variant=None, test_id=None, now=NOW)
    second = buffer.add(TENANT, ["b", "c", "d"], variant=None, test_id=None, now=NOW)
    buffer.flush()

    # Then one message waits in the queue and nothing is written yet
    [message] = _queued(aws_env)
    assert set(json.loads(message["Body"])["tenants"]) == {TENANT}
    assert _totals(counters) == {"responses": 0, "impressions": 0}

    # When the event source mapping delivers it
    assert impressions.drain()

    # Then the day row, the item rows and the response row (attribution finds both ids) are written
    assert _totals(counters) == {"responses": 2, "impressions": 5}
    items = {
        row.key: row.counters["impressions"]
        for row in counters.rows(TENANT, *keys.item_range("2025-01-10", "2025-01-10"))
    }
    assert items == {
        keys.item_key("2025-01-10", item): count for item, count in {"a": 1, "b": 2, "c": 1, "d": 1}.items()
    }
    assert set(counters.recommendations(TENANT, [first, second], NOW)) == {first, second}
    assert impressions.pending() == 0


def test_a_redelivered_batch_is_counted_once(aws_env: LocalNames) -> None:
    counters = _counters(aws_env)
    buffer = ImpressionBuffer(counters, handoff=ImpressionHandoff(_queue(aws_env), _writer(aws_env)))
    for user in range(3):
        buffer.add(TENANT, [f"i{user}", "x"], variant=None, test_id=None, now=NOW)
        buffer.flush()
    event = _sqs_event(*(message["Body"] for message in _queued(aws_env)))
    assert len(event["Records"]) == 3

    # The same batch delivered twice (a visibility timeout passed), then one message a third time
    assert _invoke(event) == {"batchItemFailures": []}  # type: ignore[arg-type]
    assert _invoke(event) == {"batchItemFailures": []}  # type: ignore[arg-type]
    assert _invoke(_sqs_event(event["Records"][1]["body"])) == {"batchItemFailures": []}  # type: ignore[arg-type]

    assert _totals(counters) == {"responses": 3, "impressions": 6}
    [x_row] = [
        row
        for row in counters.rows(TENANT, *keys.item_range("2025-01-10", "2025-01-10"))
        if row.key.endswith("#x")
    ]
    assert x_row.counters["impressions"] == 3


def test_a_failed_send_is_applied_directly_and_its_queued_copy_is_skipped(
    aws_env: LocalNames, impressions: SqsEventSource, capsys: pytest.CaptureFixture[str]
) -> None:
    counters = _counters(aws_env)
    handoff = ImpressionHandoff(QueuedThenFailed(_queue(aws_env)), _writer(aws_env))
    buffer = ImpressionBuffer(counters, handoff=handoff)

    # SendMessage answers an error (although the message was queued): serving writes it itself
    recommendation_id = buffer.add(TENANT, ["a", "b", "c"], variant=None, test_id=None, now=NOW)
    buffer.flush()
    assert _totals(counters) == {"responses": 1, "impressions": 3}
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert [m["ImpressionsAppliedDirectly"] for m in metrics if "ImpressionsAppliedDirectly" in m] == [[3.0]]
    assert not [m for m in metrics if "ImpressionsDropped" in m]

    # The queued copy arrives later: it is recognised and not counted again
    assert impressions.drain()
    assert _totals(counters) == {"responses": 1, "impressions": 3}
    assert set(counters.recommendations(TENANT, [recommendation_id], NOW)) == {recommendation_id}


def test_a_message_applied_half_way_is_completed_by_its_redelivery(aws_env: LocalNames) -> None:
    counters = _counters(aws_env)
    # Given one response of 100 items: 102 writes, three parts, two transactions
    buffer = ImpressionBuffer(counters, handoff=ImpressionHandoff(_queue(aws_env), _writer(aws_env)))
    buffer.add(TENANT, [f"i{n:03d}" for n in range(100)], variant=None, test_id=None, now=NOW)
    buffer.flush()
    [queued] = _queued(aws_env)
    message = ImpressionMessage.model_validate_json(queued["Body"])
    assert len(parts_of(message)) == 3

    # When the second transaction keeps failing: the message is reported failed, part of it applied
    half = _writer(aws_env, FailingTransactions(boto3.client("dynamodb"), succeed=1))
    assert half.apply([message], NOW) == {message.delivery_id}
    applied = sum(1 for _ in counters.rows(TENANT, *keys.item_range("2025-01-10", "2025-01-10")))
    assert 0 < applied < 100

    # Then its redelivery applies exactly what was missing
    assert _writer(aws_env).apply([message], NOW) == set()
    assert _totals(counters) == {"responses": 1, "impressions": 100}
    rows = list(counters.rows(TENANT, *keys.item_range("2025-01-10", "2025-01-10")))
    assert len(rows) == 100 and {row.counters["impressions"] for row in rows} == {1}


def test_the_consumer_reports_what_it_could_not_apply(
    aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = _counters(aws_env)
    buffer = ImpressionBuffer(counters, handoff=ImpressionHandoff(_queue(aws_env), _writer(aws_env)))
    buffer.add(TENANT, ["a"], variant=None, test_id=None, now=NOW)
    buffer.flush()
    [queued] = _queued(aws_env)

    # A body that is no message (it will reach the dead-letter queue), and a valid one
    result = _invoke(_sqs_event('{"not": "impressions"}', queued["Body"]))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert _totals(counters) == {"responses": 1, "impressions": 1}

    # The table refusing every transaction: the valid message is reported for redelivery
    buffer.add(TENANT, ["b"], variant=None, test_id=None, now=NOW)
    buffer.flush()
    bodies = [message["Body"] for message in _queued(aws_env)]
    from functions.analytics import handlers

    monkeypatch.setattr(handlers, "_writer", lambda: _writer(aws_env, FailingTransactions(None, succeed=0)))
    result = _invoke(_sqs_event(*bodies))
    assert result == {"batchItemFailures": [{"itemIdentifier": f"m{n}"} for n in range(len(bodies))]}
    assert _totals(counters) == {"responses": 1, "impressions": 1}


class _CountingRunner:
    """The in-process runner, counting the invocations of each batch's size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        self.batches.append(len(event["Records"]))
        return LambdaRunner().invoke(function_name, event)


def test_the_mapping_gathers_a_window_and_delivers_nothing_while_disabled(aws_env: LocalNames) -> None:
    counters = _counters(aws_env)
    buffer = ImpressionBuffer(counters, handoff=ImpressionHandoff(_queue(aws_env), _writer(aws_env)))
    runner = _CountingRunner()
    mapping = impressions_event_source(runner, aws_env, "us-east-1")
    mapping.set_enabled(False)
    mapping.start()
    try:
        # Three flushes while the mapping is off: they wait in the queue
        for items in (["a"], ["a", "b"], ["c"]):
            buffer.add(TENANT, items, variant=None, test_id=None, now=NOW)
            buffer.flush()
        time.sleep(1.5)
        assert mapping.pending() == 3 and runner.batches == []
        assert _totals(counters) == {"responses": 0, "impressions": 0}

        # Turned on, the poller takes them as one batch (its window is the spec's second)
        mapping.set_enabled(True)
        for _ in range(100):
            if mapping.pending() == 0:
                break
            time.sleep(0.05)
        assert _totals(counters) == {"responses": 3, "impressions": 4}
        assert runner.batches == [3]
    finally:
        mapping.stop()
