"""PrepareDataset's logic: a training snapshot of the last N days, with a time-based validation split."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from functions.common import resources
from functions.common.errors import DatasetError
from functions.ingestion.schema import INTERACTIONS_SCHEMA, ITEMS_SCHEMA
from functions.repositories.data_store import DataStore
from functions.repositories.uploads import UploadRepository

_DAY = re.compile(r"/(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet$")


@dataclass(frozen=True)
class Snapshot:
    """What PrepareDataset wrote."""

    prefix: str
    interactions: int
    validation: int
    users: int
    items: int
    window_start: datetime
    window_end: datetime


def snapshot_prefix(tenant_id: str, job_id: str) -> str:
    """``datasets/{tenant}/{job}/``: where a job's training snapshot lives."""
    return f"datasets/{tenant_id}/{job_id}/"


def load_window(
    store: DataStore, uploads: UploadRepository, tenant_id: str, start: datetime, end: datetime
) -> pa.Table:
    """Every stored interaction of the tenant with ``start <= timestamp < end``, each event id once.

    Only committed uploads count: an upload's Parquet becomes visible when its upload record exists,
    which ingestion writes last, so an ingestion that died between the two leaves nothing half-visible.
    """
    # Uploads are partitioned by the day they arrived, which is never before the event happened.
    candidates = {
        key: match.group(2)
        for key in store.list_keys(resources.raw_prefix(tenant_id, "interactions"))
        if (match := _DAY.search(key)) and match.group(1) >= start.date().isoformat()
    }
    committed = uploads.committed(tenant_id, candidates.values()) if candidates else set()
    keys = [key for key, upload_id in candidates.items() if upload_id in committed]
    if not keys:
        return INTERACTIONS_SCHEMA.empty_table()
    table = pa.concat_tables([store.read_parquet(key).cast(INTERACTIONS_SCHEMA) for key in sorted(keys)])
    in_window = pc.and_(
        pc.greater_equal(table["timestamp"], pa.scalar(start, INTERACTIONS_SCHEMA.field("timestamp").type)),
        pc.less(table["timestamp"], pa.scalar(end, INTERACTIONS_SCHEMA.field("timestamp").type)),
    )
    return _dedupe_event_ids(table.filter(in_window))


def _dedupe_event_ids(table: pa.Table) -> pa.Table:
    """Keep the first row of each non-empty event id (a belt to the ingestion-time claim's braces)."""
    event_ids = table["event_id"]
    if table.num_rows == 0 or event_ids.null_count == table.num_rows:
        return table
    order = np.arange(table.num_rows)
    ids = event_ids.to_numpy(zero_copy_only=False)
    has_id = ~pc.is_null(event_ids).to_numpy(zero_copy_only=False)
    _, first = np.unique(ids[has_id].astype(str), return_index=True)
    keep = np.concatenate([order[~has_id], order[has_id][first]])
    keep.sort()
    return table.take(pa.array(keep))


def mark_validation(table: pa.Table, fraction: float) -> pa.Table:
    """Add ``is_validation``: each user's latest ``fraction`` of interactions (≥ 1 for users with ≥ 3)."""
    n = table.num_rows
    if n == 0:
        return table.append_column("is_validation", pa.array([], pa.bool_()))
    users = pc.dictionary_encode(table["user_id"]).combine_chunks().indices.to_numpy()
    stamps = table["timestamp"].cast(pa.int64()).to_numpy()
    order = np.lexsort((stamps, users))
    sorted_users = users[order]
    counts = np.bincount(sorted_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[sorted_users]  # 0 = the user's oldest interaction
    per_user = counts[sorted_users]
    held_out = np.where(per_user >= 3, np.maximum(1, np.floor(per_user * fraction)), 0)
    flags_sorted = rank >= per_user - held_out
    flags = np.empty(n, dtype=bool)
    flags[order] = flags_sorted
    return table.append_column("is_validation", pa.array(flags))


def prepare_snapshot(
    store: DataStore,
    uploads: UploadRepository,
    tenant_id: str,
    job_id: str,
    *,
    now: datetime,
    window_days: int,
    validation_fraction: float,
) -> Snapshot:
    """Write ``interactions.parquet`` (with ``is_validation``) and ``items.parquet`` for one job."""
    start = now - timedelta(days=window_days)
    catalog = store.read_catalog(tenant_id).table
    if catalog is None or catalog.num_rows == 0:
        raise DatasetError("the tenant has no catalogue yet: upload items before training")
    interactions = load_window(store, uploads, tenant_id, start, now)
    known = pc.is_in(interactions["item_id"], value_set=catalog["item_id"])
    interactions = interactions.filter(known)
    if interactions.num_rows == 0:
        raise DatasetError(f"no interactions with catalogue items in the last {window_days} days")
    interactions = mark_validation(interactions, validation_fraction)
    prefix = snapshot_prefix(tenant_id, job_id)
    store.put_parquet(prefix + "interactions.parquet", interactions)
    store.put_parquet(prefix + "items.parquet", catalog.cast(ITEMS_SCHEMA))
    return Snapshot(
        prefix=prefix,
        interactions=interactions.num_rows,
        validation=int(pc.sum(interactions["is_validation"]).as_py() or 0),
        users=len(pc.unique(interactions["user_id"])),
        items=catalog.num_rows,
        window_start=start,
        window_end=now,
    )
