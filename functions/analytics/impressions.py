"""Impressions buffered per container and written in merged batches.

Counting every response with its own writes costs ``2 + n`` writes per response (one per item): at
hundreds of responses a second that is thousands of writes a second and a round trip on every
request. The buffer instead merges the counter increments of all responses of the last
``flush_seconds`` (one ``ADD`` per distinct row) and writes their attribution records with
BatchWriteItem, from a background thread, so no request waits for the writes. A container that
dies loses at most that window of impressions — an accepted trade-off for counters; interactions
themselves are never buffered. ``flush_seconds = 0`` writes on every response (tests, low traffic).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from functions.analytics import telemetry
from functions.analytics.counters_repository import AnalyticsCounters
from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.analytics.serving_hooks import response_impressions
from functions.common.errors import ServiceUnavailableError
from functions.common.observability import logger

MAX_PENDING_RESPONSES = 500


@dataclass
class _Pending:
    deltas: dict[str, CounterDelta] = field(default_factory=dict)
    records: list[RecommendationRecord] = field(default_factory=list)
    items: int = 0


class ImpressionBuffer:
    """Collects responses' impressions; a background thread writes them every ``flush_seconds``."""

    def __init__(
        self,
        counters: AnalyticsCounters,
        *,
        flush_seconds: float,
    ) -> None:
        self._counters = counters
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._responses = 0
        if flush_seconds > 0:  # a quiet container still writes what it holds, a window later
            threading.Thread(target=self._flush_periodically, name="impressions", daemon=True).start()

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self._flush_seconds)
            self.flush()

    def add(
        self,
        tenant_id: str,
        recommendation_id: str,
        item_ids: Sequence[str],
        *,
        variant: str | None,
        test_id: str | None,
        now: datetime,
    ) -> None:
        """Count one response returned to a shop (flushing the buffer when it is due)."""
        record, deltas = response_impressions(
            recommendation_id, item_ids, variant=variant, test_id=test_id, now=now
        )
        with self._lock:
            pending = self._pending.setdefault(tenant_id, _Pending())
            for key, delta in deltas.items():
                merged = pending.deltas.setdefault(key, CounterDelta())
                for name, value in delta.counters.items():
                    merged.add(name, value)
            pending.records.append(record)
            pending.items += len(dict.fromkeys(item_ids))
            self._responses += 1
            # With a window, the background thread writes: a request never waits for a flush. A full
            # buffer (a burst) or no window at all (tests, low traffic) writes here.
            due = self._flush_seconds == 0 or self._responses >= MAX_PENDING_RESPONSES
            batch = self._take() if due else {}
        self._write(batch)

    def flush(self) -> None:
        """Write whatever is pending now."""
        with self._lock:
            batch = self._take()
        self._write(batch)

    def _take(self) -> dict[str, _Pending]:
        batch, self._pending, self._responses = self._pending, {}, 0
        return batch

    def _write(self, batch: dict[str, _Pending]) -> None:
        for tenant_id, pending in batch.items():
            try:
                self._counters.put_records(tenant_id, pending.records)
                self._counters.apply(tenant_id, pending.deltas)
            except ServiceUnavailableError as exc:
                logger.warning(
                    "impressions not recorded",
                    extra={"tenant_id": tenant_id, "responses": len(pending.records), "error": exc.message},
                )
                telemetry.impressions_dropped(pending.items)
