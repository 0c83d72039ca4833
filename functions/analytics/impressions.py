"""Impressions collected during a request and handed off before its invocation ends.

A Lambda container is frozen the moment its handler returns and may be reclaimed without notice, so
nothing may be left for a background thread: ``add`` only collects (no I/O; the warm path stays on
the event loop) and ``flush`` hands off everything collected, which the serving app calls after every
request (``functions.serving.app``: after the answer is built and before the handler returns, so
within the invocation).

Deployed (``ImpressionHandoff``), a flush is ONE SQS ``SendMessage``: the responses' rows and their
counter increments merged by row (``functions.analytics.deliveries``). The ``impressions`` consumer
writes them, merged across messages, exactly once. Should SendMessage fail, serving applies the same
message to the table itself (counted as ``ImpressionsAppliedDirectly``; still exactly once, even if
the message was queued after all). Without a handoff (scripts, tests: ``inline=True``) a flush writes
directly, as the consumer would:

- one PutItem of a **response row** (``rec_{batch}_{n}``: every response of the flush, one row per
  tenant, sealed at ``MAX_ROW_BYTES`` / ``MAX_ROW_ENTRIES``, far below DynamoDB's 400 KB), so
  attribution finds every response with one keyed read;
- one ``ADD`` per counter row (the day totals, one per recommended item), merged by row across the
  responses of a flush.

What cannot be handed off or written is logged and counted (``ImpressionsDropped``); the response is
still served. ``inline=True`` makes ``add`` flush by itself (callers without a request boundary).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.analytics import keys, telemetry
from functions.analytics.deliveries import ImpressionMessage, ResponseRow, tenant_share
from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.analytics.serving_hooks import response_impressions
from functions.analytics.store.counters import AnalyticsCounters, encode_response_row
from functions.analytics.store.deliveries import DeliveryWriter
from functions.analytics.store.impressions_queue import ImpressionQueue
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


class ImpressionHandoff:
    """Where a deployed serving function's flush goes: the queue, else the table, exactly once."""

    def __init__(self, queue: ImpressionQueue, writer: DeliveryWriter) -> None:
        self._queue = queue
        self._writer = writer

    def deliver(self, message: ImpressionMessage, *, items: int) -> None:
        """Queue ``message``; if that fails, apply it directly. Raises when neither worked."""
        try:
            self._queue.send(message)
            return
        except ServiceUnavailableError as exc:
            logger.warning(
                "impressions not queued, applying them directly",
                extra={"delivery_id": message.delivery_id, "error": exc.message},
            )
        if self._writer.apply([message], datetime.now(UTC)):
            raise ServiceUnavailableError("the analytics store is unavailable")
        telemetry.impressions_applied_directly(items)


class ImpressionBuffer:
    """Collects responses' impressions; ``flush`` (after every request) hands them off or writes them."""

    def __init__(
        self, counters: AnalyticsCounters, *, inline: bool = False, handoff: ImpressionHandoff | None = None
    ) -> None:
        self._counters = counters
        self._inline = inline
        self._handoff = handoff
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
        """Hand off (or write) everything collected: response rows and every counter row, and wait."""
        with self._lock:
            batches = self._take()
        if not batches:
            return
        if self._handoff is not None:
            self._hand_off(self._handoff, batches)
            return
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

    def _hand_off(self, handoff: ImpressionHandoff, batches: dict[str, _Batch]) -> None:
        message = ImpressionMessage.new(
            {
                tenant_id: tenant_share([_stored(row) for row in batch.rows], batch.deltas)
                for tenant_id, batch in batches.items()
            }
        )
        items = sum(batch.items for batch in batches.values())
        try:
            handoff.deliver(message, items=items)
        except ServiceUnavailableError as exc:
            logger.warning(
                "impressions not recorded",
                extra={
                    "delivery_id": message.delivery_id,
                    "responses": sum(len(row.records) for b in batches.values() for row in b.rows),
                    "error": exc.message,
                },
            )
            telemetry.impressions_dropped(items)

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


def _stored(row: _ResponseRow) -> ResponseRow:
    expires_at, entries = encode_response_row(row.batch_id, row.records)
    return ResponseRow(batch_id=row.batch_id, expires_at=expires_at, entries=entries)
