"""Erasing a shopper (GDPR): their interactions leave every stored copy, so the next training excludes them.

Stored copies are the raw uploads (``raw/{tenant}/interactions/``), training snapshots
(``datasets/{tenant}/``) and the real-time feed (``recent_events``). Each Parquet object holding the
shopper is rewritten without their rows (or deleted when nothing else is left). Aggregates that
identify nobody — per-item counts, popularity, analytics counters — stay.

Model versions trained before the erasure (or by a job that took its snapshot before it) still hold
the shopper's vector and history in their artifacts, which are immutable. So the erasure also leaves a
marker in the shopper's feed (``recent_activity.ERASED_SORT_KEY``) that serving reads with the feed it
reads anyway: from then on, every version it serves — the active one, one pinned by an A/B test, one a
running job publishes later — answers this shopper as a stranger, and no reason names an erased item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow.compute as pc

from functions.common import resources
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import RecentEventsRepository


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure removed."""

    user_id: str
    interactions_deleted: int
    objects_rewritten: int
    recent_events_deleted: int


def erase_user(
    store: DataStore, recent: RecentEventsRepository, tenant_id: str, user_id: str, *, now: datetime
) -> ErasureReport:
    """Remove every stored interaction of ``user_id`` in the tenant's data and mark them erased."""
    deleted = rewritten = 0
    prefixes = (resources.raw_prefix(tenant_id, "interactions"), f"datasets/{tenant_id}/")
    for prefix in prefixes:
        for key in store.list_keys(prefix):
            if not key.endswith(".parquet") or "/items" in key:
                continue
            table = store.read_parquet(key)
            if "user_id" not in table.column_names:
                continue
            theirs = pc.equal(table["user_id"], user_id)
            count = int(pc.sum(theirs).as_py() or 0)
            if not count:
                continue
            remaining = table.filter(pc.invert(theirs))
            if remaining.num_rows:
                store.put_parquet(key, remaining)
            else:
                store.delete(key)
            deleted += count
            rewritten += 1
    events = recent.delete_user(tenant_id, user_id, erased_at=now)
    return ErasureReport(user_id, deleted, rewritten, events)
