"""Impressions buffered per container and written behind the requests, at a bounded rate.

Counting every response with its own writes costs ``2 + n`` writes per response (one per item): at a
thousand responses a second that is twelve thousand writes a second, a round trip on every request
and a DynamoDB bill that grows with traffic. The buffer instead:

- gives every response its recommendation id from a **response row** of the current window
  (``rec_{batch}_{n}``) and writes each window's responses as ONE PutItem per tenant (sealed at
  ``MAX_ROW_BYTES`` / ``MAX_ROW_ENTRIES``, far below DynamoDB's 400 KB), so attribution still finds
  every response with one keyed read;
- merges counter increments by row (one ``ADD`` per distinct day or item row) and writes at most
  ``rows_per_second`` of them a second. The day totals go first, every window; item rows drain
  oldest first and keep collecting increments while they wait, so under heavy traffic each row is
  written less often with a bigger increment — the write rate is fixed, not proportional to traffic.
  Item counters then lag by up to ``backlog / rows_per_second`` seconds (a minute on the benchmark
  below); nothing is lost while the container lives.

Everything is written by a background thread every ``flush_seconds``: no request waits for a write.
A container that dies loses what it holds (at most a window of responses and the item-row backlog):
an accepted trade-off for counters; interactions themselves are never buffered. ``flush_seconds = 0``
writes everything on every response (tests, low traffic).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from functions.analytics import keys, telemetry
from functions.analytics.counters_repository import AnalyticsCounters
from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.analytics.serving_hooks import response_impressions
from functions.common.errors import ServiceUnavailableError
from functions.common.observability import logger

#: A response row is sealed (and a new one started) past either bound; 400 KB is DynamoDB's item limit.
MAX_ROW_BYTES = 256 * 1024
MAX_ROW_ENTRIES = 4_000
#: Counter rows held beyond this are written at once, whatever the rate (a memory bound, not a goal).
MAX_PENDING_ROWS = 50_000
DEFAULT_ROWS_PER_SECOND = 50
_ENTRY_OVERHEAD_BYTES = 48  # entry number, day, variant and the attribute names, roughly


@dataclass
class _ResponseRow:
    batch_id: str = field(default_factory=lambda: secrets.token_hex(8))
    records: list[RecommendationRecord] = field(default_factory=list)
    size: int = 0


@dataclass
class _Pending:
    deltas: dict[str, CounterDelta] = field(default_factory=dict)
    rows: list[_ResponseRow] = field(default_factory=list)  # the last one takes new responses
    items: int = 0  # impressions counted since the last flush, for the dropped metric


@dataclass
class _Batch:
    deltas: dict[str, CounterDelta]
    rows: list[_ResponseRow]
    items: int


class ImpressionBuffer:
    """Collects responses' impressions; a background thread writes them every ``flush_seconds``."""

    def __init__(
        self,
        counters: AnalyticsCounters,
        *,
        flush_seconds: float,
        rows_per_second: int = DEFAULT_ROWS_PER_SECOND,
    ) -> None:
        self._counters = counters
        self._flush_seconds = flush_seconds
        self._rows_per_flush = max(1, int(rows_per_second * flush_seconds))
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        if flush_seconds > 0:  # a quiet container still writes what it holds, a window later
            threading.Thread(target=self._flush_periodically, name="impressions", daemon=True).start()

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self._flush_seconds)
            self._flush(limit=self._rows_per_flush)

    def add(
        self,
        tenant_id: str,
        item_ids: Sequence[str],
        *,
        variant: str | None,
        test_id: str | None,
        now: datetime,
    ) -> str:
        """Count one response returned to a shop; returns its recommendation id."""
        with self._lock:
            pending = self._pending.setdefault(tenant_id, _Pending())
            if not pending.rows:
                pending.rows.append(_ResponseRow())
            row = pending.rows[-1]
            recommendation_id = keys.recommendation_id(row.batch_id, len(row.records))
            record, deltas = response_impressions(
                recommendation_id, item_ids, variant=variant, test_id=test_id, now=now
            )
            row.records.append(record)
            row.size += _ENTRY_OVERHEAD_BYTES + sum(len(item) + 3 for item in record.items)
            if row.size >= MAX_ROW_BYTES or len(row.records) >= MAX_ROW_ENTRIES:
                pending.rows.append(_ResponseRow())
            for key, delta in deltas.items():
                merged = pending.deltas.setdefault(key, CounterDelta())
                for name, value in delta.counters.items():
                    merged.add(name, value)
            pending.items += len(record.items)
        if self._flush_seconds == 0:
            self.flush()
        return recommendation_id

    @property
    def writes_inline(self) -> bool:
        """Whether ``add`` writes to DynamoDB itself (no window) instead of a background thread."""
        return self._flush_seconds == 0

    def flush(self) -> None:
        """Write everything pending now (responses and every counter row)."""
        self._flush(limit=None)

    def pending_rows(self) -> int:
        """Counter rows waiting to be written (the backlog the rate limit leaves)."""
        with self._lock:
            return sum(len(pending.deltas) for pending in self._pending.values())

    def _flush(self, limit: int | None) -> None:
        with self._lock:
            batches = self._take(limit)
        for tenant_id, batch in batches.items():
            self._write(tenant_id, batch)

    def _take(self, limit: int | None) -> dict[str, _Batch]:
        """Every response row and the counter rows due now; the rest of the backlog stays pending."""
        if limit is not None and sum(len(p.deltas) for p in self._pending.values()) > MAX_PENDING_ROWS:
            limit = None
        budget = limit
        batches: dict[str, _Batch] = {}
        for tenant_id, pending in list(self._pending.items()):
            due: dict[str, CounterDelta] = {}
            # Day rows carry the totals the summaries and A/B results read: written every window.
            for key in [key for key in pending.deltas if key.startswith(keys.DAY_PREFIX)]:
                due[key] = pending.deltas.pop(key)
            for key in list(pending.deltas):  # oldest first: a dict keeps insertion order
                if budget is not None and budget <= 0:
                    break
                due[key] = pending.deltas.pop(key)
                budget = None if budget is None else budget - 1
            rows = [row for row in pending.rows if row.records]
            batches[tenant_id] = _Batch(due, rows, pending.items)
            pending.rows, pending.items = [], 0
            if not pending.deltas:
                del self._pending[tenant_id]
        return batches

    def _write(self, tenant_id: str, batch: _Batch) -> None:
        try:
            for row in batch.rows:
                self._counters.put_responses(tenant_id, row.batch_id, row.records)
            if batch.deltas:
                self._counters.apply(tenant_id, batch.deltas)
        except ServiceUnavailableError as exc:
            logger.warning(
                "impressions not recorded",
                extra={
                    "tenant_id": tenant_id,
                    "responses": sum(len(row.records) for row in batch.rows),
                    "error": exc.message,
                },
            )
            telemetry.impressions_dropped(batch.items)
