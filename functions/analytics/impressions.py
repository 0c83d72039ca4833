"""Impressions collected during a request and written before its invocation ends.

A Lambda container is frozen the moment its handler returns and may be reclaimed without notice, so
nothing may be left for a background thread: ``add`` only collects (no I/O; the warm path stays on
the event loop) and ``flush`` writes everything collected, which the serving app calls after every
request (``functions.serving.app``: after the answer is built and before the handler returns, so
within the invocation). What a response costs:

- one PutItem of a **response row** (``rec_{batch}_{n}``: every response of the flush, one row per
  tenant, sealed at ``MAX_ROW_BYTES`` / ``MAX_ROW_ENTRIES``, far below DynamoDB's 400 KB), so
  attribution finds every response with one keyed read;
- one ``ADD`` per counter row (the day totals, one per recommended item), merged by row across the
  responses of a flush.

All of them are sent at once on the counters' pool and waited for. A write that fails is logged and
counted (``ImpressionsDropped``); the response is still served. ``inline=True`` makes ``add`` flush
by itself (callers without a request boundary: tests, scripts).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from functions.analytics import keys, telemetry
from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.analytics.serving_hooks import response_impressions
from functions.analytics.store.counters import AnalyticsCounters
from functions.common.errors import ServiceUnavailableError
from functions.common.observability import logger

#: A response row is sealed (and a new one started) past either bound; 400 KB is DynamoDB's item limit.
MAX_ROW_BYTES = 256 * 1024
MAX_ROW_ENTRIES = 4_000
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
    """Collects responses' impressions; ``flush`` (after every request) writes them."""

    def __init__(self, counters: AnalyticsCounters, *, inline: bool = False) -> None:
        self._counters = counters
        self._inline = inline
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

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
        if self._inline:
            self.flush()
        return recommendation_id

    @property
    def writes_inline(self) -> bool:
        """Whether ``add`` writes to DynamoDB itself instead of leaving it to ``flush``."""
        return self._inline

    @property
    def pending(self) -> bool:
        """Whether anything waits for ``flush``."""
        return bool(self._pending)

    def flush(self) -> None:
        """Write everything collected (response rows and every counter row), waiting for the writes."""
        with self._lock:
            batches = self._take()
        for tenant_id, batch in batches.items():
            self._write(tenant_id, batch)

    def pending_rows(self) -> int:
        """Counter rows waiting for ``flush``."""
        with self._lock:
            return sum(len(pending.deltas) for pending in self._pending.values())

    def _take(self) -> dict[str, _Batch]:
        """Every response row and counter row collected; nothing stays pending."""
        batches = {
            tenant_id: _Batch(pending.deltas, [row for row in pending.rows if row.records], pending.items)
            for tenant_id, pending in self._pending.items()
        }
        self._pending = {}
        return batches

    def _write(self, tenant_id: str, batch: _Batch) -> None:
        try:
            self._counters.record_responses(
                tenant_id, [(row.batch_id, row.records) for row in batch.rows], batch.deltas
            )
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
