"""The impression buffer merges responses and writes off the request path."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.analytics.impressions import ImpressionBuffer

NOW = datetime(2025, 1, 7, 12, tzinfo=UTC)


class FakeCounters:
    """Records what would be written."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, dict[str, CounterDelta]]] = []
        self.records: list[RecommendationRecord] = []

    def apply(self, tenant_id: str, deltas: dict[str, CounterDelta]) -> int:
        self.applied.append((tenant_id, deltas))
        return len(deltas)

    def put_records(self, tenant_id: str, records: list[RecommendationRecord]) -> None:
        self.records.extend(records)


def test_responses_are_merged_and_written_by_the_background_thread() -> None:
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters), flush_seconds=0.05)

    buffer.add("t1", "rec_1", ["a", "b"], variant=None, test_id=None, now=NOW)
    buffer.add("t1", "rec_2", ["b", "c"], variant=None, test_id=None, now=NOW)
    assert counters.applied == []  # the requests did not wait for any write

    deadline = time.monotonic() + 2
    while not counters.applied and time.monotonic() < deadline:
        time.sleep(0.01)
    tenant, deltas = counters.applied[0]
    day = [d for key, d in deltas.items() if key.startswith("day#")][0]
    items = {key: d.counters["impressions"] for key, d in deltas.items() if not key.startswith("day#")}
    assert tenant == "t1" and (day.counters["responses"], day.counters["impressions"]) == (2, 4)
    assert sorted(items.values()) == [1, 1, 2]  # b was shown twice, in one merged row
    assert [r.recommendation_id for r in counters.records] == ["rec_1", "rec_2"]


def test_without_a_window_every_response_is_written_at_once() -> None:
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters), flush_seconds=0)

    buffer.add("t1", "rec_1", ["a"], variant="control", test_id="ab_1", now=NOW)

    assert len(counters.applied) == 1 and counters.records[0].variant == "control"
