"""A tenant's weighted item counts, sharded so that no object takes every upload's write.

Each bulk upload writes its own counts as one delta object (``catalog/{tenant}/item_counts/{upload}``);
nobody else writes that key, so files ingested in parallel never wait for each other, and a retried
upload rewrites its own delta instead of adding its rows twice. Whoever publishes popular items reads
the base object plus every delta it has not folded in yet and sums them. Once enough deltas are older
than any ingest invocation can run (so none of them can still be undone by its upload's
compensation), the publisher folds them into the base: a write conditional on the base's ETag that
records which deltas it holds, after which those deltas are deleted. A publisher that loses the race
simply does not fold; its sums were right either way.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Final

import pyarrow as pa

from functions.common import resources
from functions.common.errors import ConflictError, NotFoundError, ServiceUnavailableError
from functions.ingestion.popularity import COUNTS_SCHEMA, merge_counts
from functions.ingestion.store.data_store import DataStore

#: Deltas are folded into the base once this many are old enough.
FOLD_AT: Final = 16
#: Older than the longest ingest invocation (300 s) with margin: its upload has been recorded or undone.
FOLD_AFTER: Final = timedelta(minutes=15)
#: Schema metadata of the base: the upload ids whose deltas it holds.
_FOLDED = b"embedrec.folded_uploads"
#: A delta deleted between listing and reading was folded meanwhile: read again from the start.
_READ_ATTEMPTS = 5


class ItemCounts:
    """Reads and writes a tenant's item counts: one base object and one delta per recent upload."""

    def __init__(self, store: DataStore) -> None:
        self._store = store

    def add(self, tenant_id: str, upload_id: str, counts: pa.Table) -> None:
        """Store one upload's counts (replacing what an earlier try of the same upload stored)."""
        self._store.put_parquet(
            resources.item_count_delta_key(tenant_id, upload_id), counts.cast(COUNTS_SCHEMA)
        )

    def remove(self, tenant_id: str, upload_id: str) -> None:
        """Undo ``add`` (the upload failed and will be retried)."""
        self._store.delete(resources.item_count_delta_key(tenant_id, upload_id))

    def read(self, tenant_id: str, now: datetime) -> pa.Table | None:
        """The summed counts (None before any bulk upload); folds old deltas into the base on the way."""
        for _attempt in range(_READ_ATTEMPTS):
            deltas = self._store.list_objects(resources.item_count_deltas_prefix(tenant_id))
            base = self._store.read_versioned(resources.item_counts_key(tenant_id))
            folded = _folded(base.table)
            pending = [(key, modified) for key, modified in deltas if _upload_of(key) not in folded]
            try:
                tables = [self._store.read_parquet(key) for key, _ in pending]
            except NotFoundError:
                continue  # folded and deleted since the listing: the base now holds it
            total = base.table.select(["item_id", "weight"]) if base.table is not None else None
            for table in tables:
                total = merge_counts(total, table)
            old = [key for key, modified in pending if now - modified >= FOLD_AFTER]
            if total is not None and len(old) >= FOLD_AT:
                self._fold(tenant_id, base.table, base.etag, tables, pending, old, deltas)
            return total
        raise ServiceUnavailableError("item counts are being folded by another upload, please retry")

    def _fold(
        self,
        tenant_id: str,
        base: pa.Table | None,
        etag: str | None,
        tables: list[pa.Table],
        pending: list[tuple[str, datetime]],
        old: list[str],
        deltas: list[tuple[str, datetime]],
    ) -> None:
        """Fold the old deltas into the base (if nobody changed it since it was read), then delete them."""
        total = base.select(["item_id", "weight"]) if base is not None else None
        by_key = dict(zip((key for key, _ in pending), tables, strict=True))
        for key in old:
            total = merge_counts(total, by_key[key])
        assert total is not None
        # Ids of deltas deleted already need no remembering; those still listed (a delete that failed)
        # do, and are deleted again below.
        leftovers = [key for key, _ in deltas if _upload_of(key) in _folded(base)]
        still_there = {_upload_of(key) for key in [*leftovers, *old]}
        metadata = {_FOLDED: json.dumps(sorted(still_there)).encode()}
        try:
            self._store.write_versioned(
                resources.item_counts_key(tenant_id),
                total.replace_schema_metadata(metadata),
                expected_etag=etag,
            )
        except ConflictError:
            return  # another publisher folded first
        for key in [*leftovers, *old]:
            self._store.delete(key)


def _folded(base: pa.Table | None) -> set[str]:
    metadata = (base.schema.metadata or {}) if base is not None else {}
    return set(json.loads(metadata[_FOLDED])) if _FOLDED in metadata else set()


def _upload_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".parquet")
