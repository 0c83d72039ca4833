"""Compacting real-time events: a batch of requests' events becomes ONE Parquet object per tenant.

``POST /api/v1/interactions`` with JSON events validates, claims event ids, feeds serving's recent
events, attributes, records the request (its report, as the response shows it) and then hands the
accepted rows off as one SQS message (``EventHandoff``). The ``compact-events`` function
(``functions.ingestion.handlers``) gets batches of those messages and, per tenant, writes them as one
object ``raw/{tenant}/interactions/{day}/events_<hash>.parquet`` and one upload record of that id, the
layout every other upload has: PrepareDataset and erasure read it like any upload. Should SendMessage
fail (or the rows be too large for one message), the api function stores the message itself, the same
way (a batch of one request).

Exactly once. A message may come twice (SQS redelivers; a SendMessage that timed out may have queued
it although the api function then stored it itself), in any company. Each request's record says which
batch its events were claimed for (``compaction_batch``), and a batch's own record, written after its
object, commits it. Per tenant, the compactor:

1. reads the requests' claims; a request claimed for a committed batch is done (skipped), one claimed
   less than ``claim_expiry`` ago belongs to a running consumer (delivered again later), one whose
   record is gone was undone by its request (its client was answered 503 and retries);
2. names the batch after the remaining requests (``batch_id``: the same requests, the same key) and
   claims each for it, conditional on the claim it read, so two consumers never claim one request;
3. writes the object (less the rows of shoppers erased since their request: ``_unerased``), then the
   batch record. A consumer that fails releases its claims; one that dies
   leaves claims that expire after ``claim_expiry`` (twice the longest timeout of a function that
   claims), and an object no record commits, which nothing reads and a later batch of the same requests
   overwrites.

Real-time events still do not add to the item counts (``catalog.py``): bulk uploads do, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from functions.common import deployment, resources
from functions.common.dynamo import to_iso
from functions.common.errors import PayloadTooLargeError, ServiceUnavailableError
from functions.common.observability import logger
from functions.ingestion.event_messages import EventMessage, batch_id
from functions.ingestion.feed import interaction_span
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import RecentEventsRepository
from functions.ingestion.store.uploads import CompactionClaim, UploadRepository

if TYPE_CHECKING:  # only the api function sends: the drop folder's code path never does
    from functions.ingestion.store.event_queue import EventQueue

#: A claim older than this was made by a consumer that is no longer running: Lambda ends an invocation
#: at its timeout, and both the compactor and the api function (the direct path) time out well before.
CLAIM_EXPIRY: Final = timedelta(
    seconds=2 * max(deployment.COMPACT_EVENTS.timeout_s, deployment.API.timeout_s)
)

_MARKER_RESOLUTION: Final = timedelta(seconds=1)
_CLAIM_WORKERS: Final = 16


class EventCompactor:
    """Stores batches of handed-off events: one object and one record per tenant and batch."""

    def __init__(
        self,
        store: DataStore,
        uploads: UploadRepository,
        recent_events: RecentEventsRepository,
        *,
        claim_expiry: timedelta = CLAIM_EXPIRY,
    ) -> None:
        self._store = store
        self._uploads = uploads
        self._recent_events = recent_events
        self._claim_expiry = claim_expiry

    def compact(self, messages: Sequence[EventMessage], now: datetime) -> set[str]:
        """Store the messages' events; returns the upload ids of the messages to deliver again."""
        by_tenant: dict[str, dict[str, EventMessage]] = {}
        for message in messages:
            by_tenant.setdefault(message.tenant_id, {}).setdefault(message.upload_id, message)
        retry: set[str] = set()
        for tenant_id in sorted(by_tenant):
            try:
                retry |= self.compact_tenant(tenant_id, by_tenant[tenant_id], now)
            except ServiceUnavailableError as exc:
                logger.warning(
                    "events not compacted; they will be delivered again",
                    extra={
                        "tenant_id": tenant_id,
                        "requests": len(by_tenant[tenant_id]),
                        "error": exc.message,
                    },
                )
                retry |= set(by_tenant[tenant_id])
        return retry

    def compact_tenant(self, tenant_id: str, messages: dict[str, EventMessage], now: datetime) -> set[str]:
        """Store one tenant's messages (by upload id) as one batch; returns the ids held elsewhere.

        ``ServiceUnavailableError`` when the store failed: nothing was committed, claims are released.
        """
        claims = self._uploads.compaction_claims(tenant_id, messages)
        held = {claim.batch for claim in claims.values() if claim.batch is not None}
        committed = self._uploads.committed(tenant_id, held) if held else set()
        expired_before = now - self._claim_expiry
        retry: set[str] = set()
        todo: dict[str, CompactionClaim] = {}
        for upload_id in sorted(messages):
            claim = claims.get(upload_id)
            if claim is None:
                logger.warning(
                    "events of a request that was undone are not stored",
                    extra={"tenant_id": tenant_id, "upload_id": upload_id},
                )
            elif claim.batch is not None and claim.batch in committed:
                continue  # stored already: a redelivery
            elif claim.batch is not None and not claim.older_than(expired_before):
                retry.add(upload_id)  # a running consumer holds it
            else:
                todo[upload_id] = claim
        if not todo:
            return retry
        batch = batch_id(todo)

        def claim_for_batch(item: tuple[str, CompactionClaim]) -> bool:
            return self._uploads.claim_for_compaction(tenant_id, item[0], batch, item[1], now)

        # One conditional UpdateItem per request, 16 in flight (a batch of 1,000 in ≈ 0.3 s, not 5 s).
        with ThreadPoolExecutor(max_workers=min(_CLAIM_WORKERS, len(todo))) as pool:
            won = list(pool.map(claim_for_batch, todo.items()))
        claimed = [upload_id for upload_id, ok in zip(todo, won, strict=True) if ok]
        retry |= set(todo) - set(claimed)
        if claimed:
            try:
                self._write(tenant_id, batch, [messages[upload_id] for upload_id in claimed], now)
            except ServiceUnavailableError:
                self._release(tenant_id, claimed, batch, now)
                raise
        return retry

    def _write(self, tenant_id: str, batch: str, messages: list[EventMessage], now: datetime) -> None:
        """The batch's object, then its record (which commits it: PrepareDataset reads recorded ids only)."""
        table = self._unerased(tenant_id, messages)
        received = min(message.received_at for message in messages).astimezone(UTC)
        if table.num_rows:  # a batch whose shoppers were all erased meanwhile commits no object
            key = resources.raw_key(tenant_id, "interactions", received.date().isoformat(), batch)
            self._store.put_parquet(key, table)
        self._uploads.put(
            tenant_id,
            batch,
            {
                "upload_id": batch,
                "kind": "interactions",
                "source": "api-json",
                "status": "success",
                "accepted": table.num_rows,
                "rejected": 0,
                "duplicates": 0,
                "validation_errors": [],
                "warnings": [],
                "received_at": to_iso(received),
                "compacted_at": to_iso(now),
                "requests": len(messages),
                **interaction_span(table),
            },
        )

    def _unerased(self, tenant_id: str, messages: list[EventMessage]) -> pa.Table:
        """The messages' rows, less those of shoppers erased after the request that carried them.

        An erasure rewrites what is stored; events accepted before it but still in the queue are
        dropped here, by the erasure marker it left in the shopper's feed (one read per 100 shoppers).
        """
        tables = [message.table() for message in messages]
        erased = self._recent_events.erasures(
            tenant_id, {user for table in tables for user in table["user_id"].to_pylist()}
        )
        if erased:
            tables = [
                _without_erased(table, message.received_at, erased)
                for message, table in zip(messages, tables, strict=True)
            ]
        return pa.concat_tables(tables)

    def _release(self, tenant_id: str, upload_ids: list[str], batch: str, now: datetime) -> None:
        """Give up this consumer's claims so the redelivery is stored at once (they expire otherwise)."""
        mine = CompactionClaim(batch, now.astimezone(UTC).isoformat())
        for upload_id in upload_ids:
            try:
                self._uploads.release_compaction_claim(tenant_id, upload_id, mine)
            except ServiceUnavailableError:
                return  # the store is down: the claims expire instead


def _without_erased(table: pa.Table, received_at: datetime, erased: dict[str, datetime]) -> pa.Table:
    """The rows of shoppers not erased since ``received_at`` (markers keep whole seconds: the erasure's
    second counts as after the request)."""
    keep = [
        user not in erased or erased[user] + _MARKER_RESOLUTION <= received_at
        for user in table["user_id"].to_pylist()
    ]
    return table.filter(pa.array(keep, pa.bool_()))


class EventHandoff:
    """Where a request's accepted events go: the queue, else (or when too large) stored at once."""

    def __init__(self, queue: EventQueue | None, compactor: EventCompactor) -> None:
        self._queue = queue
        self._compactor = compactor

    def deliver(self, message: EventMessage, now: datetime) -> None:
        """Queue ``message`` or store it directly; ``ServiceUnavailableError`` when neither worked."""
        if self._queue is not None:
            try:
                self._queue.send(message)
                return
            except PayloadTooLargeError:
                pass  # a request of thousands of events is a batch of its own
            except ServiceUnavailableError as exc:
                logger.warning(
                    "events not queued, storing them directly",
                    extra={"upload_id": message.upload_id, "error": exc.message},
                )
        held = self._compactor.compact_tenant(message.tenant_id, {message.upload_id: message}, now)
        if held:  # a consumer got the message although SendMessage failed, and stores it
            logger.info("events stored by the consumer", extra={"upload_id": message.upload_id})
