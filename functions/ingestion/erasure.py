"""Erasing a shopper (GDPR): their interactions leave every stored copy, so the next training excludes them.

Stored copies are the raw uploads (``raw/{tenant}/interactions/``), training snapshots
(``datasets/{tenant}/``) and the real-time feed (``recent_events``). Each Parquet object holding the
shopper is rewritten without their rows (or deleted when nothing else is left). Aggregates that
identify nobody — per-item counts, popularity, analytics counters — stay. A model trained before the
erasure still holds the shopper's vector until the next training replaces it (daily by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.compute as pc

from functions.common import resources
from functions.repositories.data_store import DataStore
from functions.repositories.events import RecentEventsRepository


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure removed."""

    user_id: str
    interactions_deleted: int
    objects_rewritten: int
    recent_events_deleted: int


def erase_user(
    store: DataStore, recent: RecentEventsRepository, tenant_id: str, user_id: str
) -> ErasureReport:
    """Remove every stored interaction of ``user_id`` in the tenant's data."""
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
    events = recent.delete_user(tenant_id, user_id)
    return ErasureReport(user_id, deleted, rewritten, events)
