"""PrepareDataset's logic: a snapshot of N days of the tenant's data, with a time-based validation split."""

from __future__ import annotations

import json
import re
import tempfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract import layout
from contract.layout import WINDOW_METADATA_KEY
from functions.common import resources
from functions.common.errors import DatasetError
from functions.ingestion.schema import INTERACTIONS_SCHEMA, ITEMS_SCHEMA
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import InteractionSpan, UploadRepository

_DAY = re.compile(r"/(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet$")
#: Users are spread over this many local buckets; a tenant's rows in the window are read back a
#: group of buckets at a time.
_BUCKETS: Final = 64
#: Rows of one group (≈ 250 bytes a row while a group is deduped and split: ≈ 0.5 GB at 2M).
_GROUP_ROWS: Final = 2_000_000
_SNAPSHOT_FILE: Final = layout.SNAPSHOT_INTERACTIONS  # the local scratch file uploaded as it


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

    Memory is bounded by the largest upload file plus one group of user buckets, not by the tenant:
    the files are read one at a time and their rows in the window spread over ``_BUCKETS`` local
    Parquet files by a hash of the user id (each user's rows in one bucket, in stored order); then
    buckets are read a group of at most ``_GROUP_ROWS`` rows at a time, each event id kept once,
    rows of unknown items dropped, the per-user validation split marked, and the group appended to
    the snapshot, which is uploaded from local disk.
    """
    catalog = store.read_catalog(tenant_id).table
    if catalog is None or catalog.num_rows == 0:
        raise DatasetError("the tenant has no catalogue yet: upload items before training")
    files, span = _interaction_files(store, uploads, tenant_id)
    if span is None:
        raise DatasetError("the tenant has no interactions yet: upload interactions before training")
    window = resolve_window(span, window_days=window_days, as_of=as_of)
    prefix = snapshot_prefix(tenant_id, job_id)
    with tempfile.TemporaryDirectory(prefix="prepare-") as scratch:
        folder = Path(scratch)
        bucket_rows = _spread_window(store, files, window, folder)
        counts = _write_snapshot(folder, bucket_rows, catalog, window, validation_fraction)
        if counts.interactions == 0:
            raise DatasetError(describe_shortfall("0 interactions with catalogue items", window, span))
        if counts.validation == 0:
            raise DatasetError(
                describe_shortfall(
                    f"too little history for a validation split ({counts.interactions} interaction(s), "
                    "no user with at least 3)",
                    window,
                    span,
                )
            )
        store.upload_file(prefix + layout.SNAPSHOT_INTERACTIONS, folder / _SNAPSHOT_FILE)
    store.put_parquet(prefix + layout.SNAPSHOT_ITEMS, catalog.cast(ITEMS_SCHEMA))
    return Snapshot(
        prefix=prefix,
        interactions=counts.interactions,
        validation=counts.validation,
        users=counts.users,
        items=catalog.num_rows,
        window=window,
        data_span=span,
    )


@dataclass(frozen=True)
class _Counts:
    interactions: int
    validation: int
    users: int


def _bucket_path(folder: Path, bucket: int) -> Path:
    return folder / f"bucket_{bucket:03d}.parquet"


def _spread_window(
    store: DataStore, files: list[_UploadFile], window: TrainingWindow, folder: Path
) -> list[int]:
    """Each file's rows in the window into the local bucket of their user; returns rows per bucket."""
    # A file whose span misses the window holds nothing for it.
    wanted = [f.key for f in files if f.span.last >= window.start and f.span.first < window.end]
    stamp_type = INTERACTIONS_SCHEMA.field("timestamp").type
    start, end = pa.scalar(window.start, stamp_type), pa.scalar(window.end, stamp_type)
    writers: dict[int, pq.ParquetWriter] = {}
    rows = [0] * _BUCKETS
    try:
        for key in wanted:
            table = store.read_parquet(key).cast(INTERACTIONS_SCHEMA)
            table = table.filter(
                pc.and_(pc.greater_equal(table["timestamp"], start), pc.less(table["timestamp"], end))
            )
            if table.num_rows == 0:
                continue
            buckets = _user_buckets(table["user_id"])
            order = np.argsort(buckets, kind="stable")  # stable: each bucket keeps the stored order
            table = table.take(pa.array(order))
            sizes = np.bincount(buckets, minlength=_BUCKETS)
            offset = 0
            for bucket in np.flatnonzero(sizes).tolist():
                size = int(sizes[bucket])
                if bucket not in writers:
                    writers[bucket] = pq.ParquetWriter(
                        _bucket_path(folder, bucket), INTERACTIONS_SCHEMA, compression="zstd"
                    )
                writers[bucket].write_table(table.slice(offset, size))
                rows[bucket] += size
                offset += size
    finally:
        for writer in writers.values():
            writer.close()
    return rows


def _user_buckets(user_ids: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """A stable bucket per user id (crc32 of the id, so every file puts a user in the same bucket)."""
    encoded = pc.dictionary_encode(user_ids).combine_chunks()
    per_value = np.fromiter(
        (zlib.crc32(value.encode()) % _BUCKETS for value in encoded.dictionary.to_pylist()),
        dtype=np.int64,
        count=len(encoded.dictionary),
    )
    buckets: npt.NDArray[np.int64] = per_value[encoded.indices.to_numpy()]
    return buckets


def _bucket_groups(bucket_rows: list[int]) -> list[list[int]]:
    """Consecutive non-empty buckets, grouped so that a group holds at most ``_GROUP_ROWS`` rows."""
    groups: list[list[int]] = []
    current: list[int] = []
    held = 0
    for bucket, rows in enumerate(bucket_rows):
        if rows == 0:
            continue
        if current and held + rows > _GROUP_ROWS:
            groups.append(current)
            current, held = [], 0
        current.append(bucket)
        held += rows
    if current:
        groups.append(current)
    return groups


def _write_snapshot(
    folder: Path,
    bucket_rows: list[int],
    catalog: pa.Table,
    window: TrainingWindow,
    validation_fraction: float,
) -> _Counts:
    """Dedupe, keep catalogue items and mark the split group by group into the local snapshot file."""
    schema = with_window_metadata(
        INTERACTIONS_SCHEMA.empty_table().append_column("is_validation", pa.array([], pa.bool_())), window
    ).schema
    interactions = validation = users = 0
    with pq.ParquetWriter(folder / _SNAPSHOT_FILE, schema, compression="zstd") as writer:
        for group in _bucket_groups(bucket_rows):
            # Every row of a user is in one bucket: dedupe and the split see the user's whole history.
            table = pa.concat_tables([pq.read_table(_bucket_path(folder, bucket)) for bucket in group])
            table = _dedupe_event_ids(table)
            table = table.filter(pc.is_in(table["item_id"], value_set=catalog["item_id"]))
            if table.num_rows == 0:
                continue
            users += len(pc.unique(table["user_id"]))
            table = mark_validation(table, validation_fraction)
            validation += int(pc.sum(table["is_validation"]).as_py() or 0)
            interactions += table.num_rows
            writer.write_table(table.replace_schema_metadata(schema.metadata))
    return _Counts(interactions, validation, users)


def with_window_metadata(table: pa.Table, window: TrainingWindow) -> pa.Table:
    """The snapshot with its window in the Parquet metadata, which the trainer copies to the manifest."""
    metadata = dict(table.schema.metadata or {})
    metadata[WINDOW_METADATA_KEY] = json.dumps(window.as_dict()).encode()
    return table.replace_schema_metadata(metadata)


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
