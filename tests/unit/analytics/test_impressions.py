"""The impression buffer: ids from response rows, merged counters, everything written by ``flush``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from functions.analytics import impressions, keys
from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.analytics.impressions import ImpressionBuffer
from functions.common.errors import ServiceUnavailableError

NOW = datetime(2025, 1, 7, 12, tzinfo=UTC)


class FakeCounters:
    """Records what would be written (or fails, when told to)."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, dict[str, CounterDelta]]] = []
        self.rows: list[tuple[str, str, list[RecommendationRecord]]] = []
        self.failing = False

    def apply(self, tenant_id: str, deltas: dict[str, CounterDelta]) -> int:
        if self.failing:
            raise ServiceUnavailableError("analytics down")
        self.applied.append((tenant_id, dict(deltas)))
        return len(deltas)

    def put_responses(self, tenant_id: str, batch_id: str, records: list[RecommendationRecord]) -> None:
        if self.failing:
            raise ServiceUnavailableError("analytics down")
        self.rows.append((tenant_id, batch_id, list(records)))

    def record_responses(
        self,
        tenant_id: str,
        rows: Sequence[tuple[str, list[RecommendationRecord]]],
        deltas: dict[str, CounterDelta],
    ) -> None:
        for batch_id, records in rows:
            self.put_responses(tenant_id, batch_id, records)
        if deltas:
            self.apply(tenant_id, deltas)

    def item_impressions(self) -> dict[str, Any]:
        totals: dict[str, Any] = {}
        for _tenant, deltas in self.applied:
            for key, delta in deltas.items():
                if key.startswith(keys.ITEM_PREFIX):
                    totals[key] = totals.get(key, 0) + delta.counters["impressions"]
        return totals


def test_responses_are_collected_without_io_and_flush_writes_them_merged() -> None:
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters))

    first = buffer.add("t1", ["a", "b"], variant=None, test_id=None, now=NOW)
    second = buffer.add("t1", ["b", "c"], variant=None, test_id=None, now=NOW)
    assert counters.applied == [] and counters.rows == [] and buffer.pending

    buffer.flush()

    assert not buffer.pending and buffer.pending_rows() == 0  # nothing is left for later
    [(tenant, deltas)] = counters.applied
    [day] = [delta for key, delta in deltas.items() if key.startswith(keys.DAY_PREFIX)]  # one shard a flush
    assert tenant == "t1" and (day.counters["responses"], day.counters["impressions"]) == (2, 4)
    assert sorted(counters.item_impressions().values()) == [1, 1, 2]  # b shown twice: one merged row
    # Both responses live in ONE row, and their ids name that row and their entry in it
    [(_, batch_id, records)] = counters.rows
    assert [r.recommendation_id for r in records] == [first, second]
    assert keys.parse_recommendation_id(first) == (keys.RECOMMENDATION_PREFIX + batch_id, "0")
    assert keys.parse_recommendation_id(second) == (keys.RECOMMENDATION_PREFIX + batch_id, "1")
    assert records[1].items == frozenset({"b", "c"})


def test_inline_every_response_is_written_at_once() -> None:
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters), inline=True)

    served = buffer.add("t1", ["a"], variant="control", test_id="ab_1", now=NOW)

    assert len(counters.applied) == 1 and counters.rows[0][2][0].variant == "control"
    assert counters.rows[0][2][0].recommendation_id == served


def test_one_flush_writes_every_item_row_however_many() -> None:
    # 30 distinct items shown (item_0 in every response): no backlog survives a flush
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters))
    for n in range(30):
        buffer.add("t1", [f"item_{n}", "item_0"], variant=None, test_id=None, now=NOW)

    buffer.flush()

    assert buffer.pending_rows() == 0
    shown = counters.item_impressions()
    assert shown[keys.item_key("2025-01-07", "item_0")] == 30  # in every response, once
    assert sum(shown.values()) == 30 + 29  # every placement, each counted once
    [day] = [delta for key, delta in counters.applied[0][1].items() if key.startswith(keys.DAY_PREFIX)]
    assert day.counters["responses"] == 30


def test_a_full_response_row_is_sealed_and_a_new_one_started(monkeypatch: Any) -> None:
    monkeypatch.setattr(impressions, "MAX_ROW_ENTRIES", 3)
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters))
    ids = [buffer.add("t1", ["a"], variant=None, test_id=None, now=NOW) for _ in range(7)]

    buffer.flush()

    assert [len(records) for _, _, records in counters.rows] == [3, 3, 1]
    assert len({batch for _, batch, _ in counters.rows}) == 3
    assert [r.recommendation_id for _, _, records in counters.rows for r in records] == ids


def test_a_failed_write_is_counted_as_dropped_and_the_buffer_keeps_working(monkeypatch: Any) -> None:
    dropped: list[int] = []
    monkeypatch.setattr(impressions.telemetry, "impressions_dropped", dropped.append)
    counters = FakeCounters()
    buffer = ImpressionBuffer(cast(Any, counters))
    buffer.add("t1", ["a", "b"], variant=None, test_id=None, now=NOW)

    counters.failing = True
    buffer.flush()
    counters.failing = False
    buffer.add("t1", ["c"], variant=None, test_id=None, now=NOW)
    buffer.flush()

    assert dropped == [2]
    assert counters.item_impressions() == {keys.item_key("2025-01-07", "c"): 1}
