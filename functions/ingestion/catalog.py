"""The tenant's catalogue and what serving reads of it: the catalogue Parquet, the item counts, the
serving view and ``popular.json``.

Catalogue writes are conditional on the object's ETag and retried, so uploads that land together never
lose each other's rows; item counts are one delta per upload (``item_counts``), so they never collide.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract import catalog_view, layout
from functions.common import resources
from functions.common.errors import ConflictError, NotFoundError, ServiceUnavailableError
from functions.ingestion.item_counts import ItemCounts
from functions.ingestion.popularity import popular_document
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.tables import ITEMS_SCHEMA

_CATALOG_RETRIES = 5


class CatalogKeeper:
    """Keeps a tenant's catalogue, item counts, serving view and popular items in step."""

    def __init__(self, store: DataStore) -> None:
        self._store = store
        self._counts = ItemCounts(store)
        self._known_items: dict[str, tuple[str, frozenset[str]]] = {}  # tenant → (catalogue ETag, ids)

    def known_item_ids(self, tenant_id: str) -> frozenset[str]:
        """The catalogue's item ids, re-read only when the catalogue changed (a HEAD per upload)."""
        etag = self._store.etag(resources.catalog_key(tenant_id))
        if etag is None:
            return frozenset()
        remembered = self._known_items.get(tenant_id)
        if remembered is not None and remembered[0] == etag:
            return remembered[1]
        current = self._store.read_catalog(tenant_id)
        known = (
            frozenset(current.table.column("item_id").to_pylist())
            if current.table is not None
            else frozenset()
        )
        if current.etag is not None:
            self._known_items[tenant_id] = (current.etag, known)
        return known

    def remove_item(self, tenant_id: str, item_id: str) -> None:
        """Take an item out of the catalogue (serving stops showing it); ``NotFoundError`` if unknown."""
        self._change_catalog(tenant_id, lambda current: _without_item(current, item_id))

    def upsert(self, tenant_id: str, new_rows: pa.Table) -> None:
        """Merge accepted items into the catalogue (latest upload wins), with optimistic concurrency."""
        self._change_catalog(tenant_id, lambda current: _upsert_by_item_id(current, new_rows))

    def _change_catalog(self, tenant_id: str, change: Callable[[pa.Table | None], pa.Table]) -> None:
        """Apply ``change`` to the current catalogue and write it back only if nobody wrote meanwhile."""
        for _attempt in range(_CATALOG_RETRIES):
            current = self._store.read_catalog(tenant_id)
            merged = change(current.table)
            try:
                self._store.write_versioned(
                    resources.catalog_key(tenant_id), merged, expected_etag=current.etag
                )
            except ConflictError:
                continue
            self.publish_popular(tenant_id, catalog=merged)
            return
        raise ServiceUnavailableError("the catalogue is being updated by another upload, please retry")

    def add_counts(self, tenant_id: str, upload_id: str, counts: pa.Table, now: datetime) -> None:
        """Store one upload's weighted counts (``popularity.count_items``), then republish popular items."""
        self._counts.add(tenant_id, upload_id, counts)
        self.publish_popular(tenant_id, now=now)

    def remove_counts(self, tenant_id: str, upload_id: str) -> None:
        """Undo ``add_counts`` for an upload that failed (its retry adds them again, once)."""
        self._counts.remove(tenant_id, upload_id)

    def publish_popular(
        self, tenant_id: str, catalog: pa.Table | None = None, *, now: datetime | None = None
    ) -> None:
        """Rewrite what serving reads of the catalogue: its serving view and ``popular.json``.

        ``popular.json`` waits until both counts and a catalogue exist; unavailable items are not in it.
        """
        counts = self._counts.read(tenant_id, now or datetime.now(UTC))
        catalog = catalog if catalog is not None else self._store.read_catalog(tenant_id).table
        if catalog is None:
            return
        self._store.put_bytes(
            layout.catalog_view_key(tenant_id),
            catalog_view.encode(serving_columns(catalog, counts)),
            "application/gzip",
        )
        if counts is None:
            return
        servable = catalog.filter(pc.fill_null(catalog["available"], True))
        self._store.put_json(layout.popular_key(tenant_id), popular_document(counts, servable))


def _upsert_by_item_id(current: pa.Table | None, new_rows: pa.Table) -> pa.Table:
    """One row per item_id; a row of ``new_rows`` replaces the current one (and later rows earlier ones)."""
    combined = new_rows if current is None else pa.concat_tables([current.cast(ITEMS_SCHEMA), new_rows])
    combined = combined.append_column("_order", pa.array(np.arange(combined.num_rows, dtype=np.int64)))
    latest = combined.group_by("item_id").aggregate([("_order", "max")])
    keep = pc.sort_indices(latest.column("_order_max"))
    return combined.take(pc.take(latest.column("_order_max"), keep)).drop_columns(["_order"])


def _without_item(current: pa.Table | None, item_id: str) -> pa.Table:
    """The catalogue without ``item_id``; ``NotFoundError`` if it has no such item."""
    if current is None:
        raise NotFoundError(f"item '{item_id}' not found")
    keep = pc.not_equal(current["item_id"], item_id)
    if pc.all(keep).as_py() is not False:
        raise NotFoundError(f"item '{item_id}' not found")
    return current.filter(keep)


def serving_columns(catalog: pa.Table, counts: pa.Table | None) -> catalog_view.CatalogColumns:
    """The catalogue with each item's weighted interaction count, as serving reads it."""
    popularity = np.zeros(catalog.num_rows)
    if counts is not None and counts.num_rows:
        position = pc.index_in(catalog["item_id"], value_set=counts["item_id"]).to_numpy(zero_copy_only=False)
        found = ~np.isnan(position.astype(np.float64))
        weights = counts["weight"].to_numpy()
        popularity[found] = weights[position[found].astype(np.int64)]
    return catalog_view.CatalogColumns(
        item_id=catalog["item_id"].to_pylist(),
        title=catalog["title"].to_pylist(),
        category=catalog["category"].to_pylist(),
        brand=catalog["brand"].to_pylist(),
        price=catalog["price"].to_pylist(),
        available=pc.fill_null(catalog["available"], True).to_pylist(),
        popularity=popularity.tolist(),
    )
