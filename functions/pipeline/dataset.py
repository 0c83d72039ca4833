"""PrepareDataset's logic: a snapshot of N days of the tenant's data, with a time-based validation split."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from functions.common import resources
from functions.common.errors import DatasetError
from functions.ingestion.schema import INTERACTIONS_SCHEMA, ITEMS_SCHEMA
from functions.repositories.data_store import DataStore
from functions.repositories.uploads import InteractionSpan, UploadRepository

_DAY = re.compile(r"/(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet$")


#: The Parquet metadata key of a snapshot's window (``training_jobs.snapshot`` reads the same key).
WINDOW_METADATA_KEY: Final = b"embedrec.window"


@dataclass(frozen=True)
class TrainingWindow:
    """The interactions a job trains on: ``start <= timestamp < end``."""

    start: datetime
    end: datetime
    days: int
    anchor: Literal["newest_interaction", "as_of"]

    def as_dict(self) -> dict[str, str | int]:
        """As the job status and the manifest show it."""
        return {
            "start": _iso_ms(self.start),
            "end": _iso_ms(self.end),
            "days": self.days,
            "anchor": self.anchor,
        }


@dataclass(frozen=True)
class Snapshot:
    """What PrepareDataset wrote."""

    prefix: str
    interactions: int
    validation: int
    users: int
    items: int
    window: TrainingWindow
    data_span: InteractionSpan


@dataclass(frozen=True)
class _UploadFile:
    key: str
    span: InteractionSpan


def snapshot_prefix(tenant_id: str, job_id: str) -> str:
    """``datasets/{tenant}/{job}/``: where a job's training snapshot lives."""
    return f"datasets/{tenant_id}/{job_id}/"


def resolve_window(span: InteractionSpan, *, window_days: int, as_of: datetime | None) -> TrainingWindow:
    """The ``window_days`` ending at ``as_of`` or, by default, at the newest interaction (inclusive)."""
    # The store keeps milliseconds: one past the newest makes the half-open window include it.
    end = as_of if as_of is not None else span.last + timedelta(milliseconds=1)
    return TrainingWindow(
        start=end - timedelta(days=window_days),
        end=end,
        days=window_days,
        anchor="as_of" if as_of is not None else "newest_interaction",
    )


def describe_shortfall(what: str, window: TrainingWindow, span: InteractionSpan) -> str:
    """Why a window cannot be trained on, what the data spans, and what to change."""
    return (
        f"{what} between {window.start.date().isoformat()} and {window.end.date().isoformat()}; "
        f"your data spans {span.first.date().isoformat()}..{span.last.date().isoformat()}; "
        "set config.window_days or as_of"
    )


def _interaction_files(
    store: DataStore, uploads: UploadRepository, tenant_id: str
) -> tuple[list[_UploadFile], InteractionSpan | None]:
    """The tenant's committed interaction files with their spans, and the span of all of them.

    Only committed uploads count: an upload's Parquet becomes visible when its upload record exists,
    which ingestion writes last, so an ingestion that died between the two leaves nothing half-visible.
    Uploads recorded before ingestion kept spans are read to learn theirs.
    """
    candidates = {
        key: match.group(2)
        for key in store.list_keys(resources.raw_prefix(tenant_id, "interactions"))
        if (match := _DAY.search(key))
    }
    spans = uploads.interaction_spans(tenant_id, candidates.values()) if candidates else {}
    files: list[_UploadFile] = []
    for key in sorted(candidates):
        upload_id = candidates[key]
        if upload_id not in spans:
            continue
        span = spans[upload_id]
        if span is None:
            stamps = store.read_parquet(key).cast(INTERACTIONS_SCHEMA)["timestamp"]
            if len(stamps) == 0:
                continue
            bounds = pc.min_max(stamps)
            span = InteractionSpan(bounds["min"].as_py(), bounds["max"].as_py())
        files.append(_UploadFile(key, span))
    if not files:
        return files, None
    overall = InteractionSpan(min(f.span.first for f in files), max(f.span.last for f in files))
    return files, overall


def _load_window(store: DataStore, files: list[_UploadFile], window: TrainingWindow) -> pa.Table:
    """Every stored interaction with ``start <= timestamp < end``, each event id once."""
    # A file whose span misses the window holds nothing for it.
    wanted = [f.key for f in files if f.span.last >= window.start and f.span.first < window.end]
    if not wanted:
        return INTERACTIONS_SCHEMA.empty_table()
    table = pa.concat_tables([store.read_parquet(key).cast(INTERACTIONS_SCHEMA) for key in wanted])
    stamp_type = INTERACTIONS_SCHEMA.field("timestamp").type
    in_window = pc.and_(
        pc.greater_equal(table["timestamp"], pa.scalar(window.start, stamp_type)),
        pc.less(table["timestamp"], pa.scalar(window.end, stamp_type)),
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
    window_days: int,
    as_of: datetime | None,
    validation_fraction: float,
) -> Snapshot:
    """Write ``interactions.parquet`` (with ``is_validation``) and ``items.parquet`` for one job.

    The window is anchored on the tenant's data, not the clock: a shop uploading last year's history
    trains on it. ``DatasetError`` says what the data spans when the window holds too little.
    """
    catalog = store.read_catalog(tenant_id).table
    if catalog is None or catalog.num_rows == 0:
        raise DatasetError("the tenant has no catalogue yet: upload items before training")
    files, span = _interaction_files(store, uploads, tenant_id)
    if span is None:
        raise DatasetError("the tenant has no interactions yet: upload interactions before training")
    window = resolve_window(span, window_days=window_days, as_of=as_of)
    interactions = _load_window(store, files, window)
    known = pc.is_in(interactions["item_id"], value_set=catalog["item_id"])
    interactions = interactions.filter(known)
    if interactions.num_rows == 0:
        raise DatasetError(describe_shortfall("0 interactions with catalogue items", window, span))
    users = len(pc.unique(interactions["user_id"]))
    interactions = mark_validation(interactions, validation_fraction)
    validation = int(pc.sum(interactions["is_validation"]).as_py() or 0)
    if validation == 0:
        raise DatasetError(
            describe_shortfall(
                f"too little history for a validation split ({interactions.num_rows} interaction(s), "
                "no user with at least 3)",
                window,
                span,
            )
        )
    prefix = snapshot_prefix(tenant_id, job_id)
    store.put_parquet(prefix + "interactions.parquet", with_window_metadata(interactions, window))
    store.put_parquet(prefix + "items.parquet", catalog.cast(ITEMS_SCHEMA))
    return Snapshot(
        prefix=prefix,
        interactions=interactions.num_rows,
        validation=validation,
        users=users,
        items=catalog.num_rows,
        window=window,
        data_span=span,
    )


def with_window_metadata(table: pa.Table, window: TrainingWindow) -> pa.Table:
    """The snapshot with its window in the Parquet metadata, which the trainer copies to the manifest."""
    metadata = dict(table.schema.metadata or {})
    metadata[WINDOW_METADATA_KEY] = json.dumps(window.as_dict()).encode()
    return table.replace_schema_metadata(metadata)


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
