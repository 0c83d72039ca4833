"""Popularity from ingested data: weighted interaction counts per item and the popular-items document.

Serving falls back to this document for tenants without a trained model, and for cold-start users.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from contract.interactions import INTERACTION_WEIGHTS
from contract.popular import POPULAR_LIMIT, PopularDocument, PopularEntry

COUNTS_SCHEMA = pa.schema(
    [pa.field("item_id", pa.string(), nullable=False), pa.field("weight", pa.float64())]
)


def count_items(interactions: pa.Table) -> pa.Table:
    """Weighted counts per item of one batch of interactions (a purchase says more than a view)."""
    types = pa.array(list(INTERACTION_WEIGHTS))
    weights = pa.array(list(INTERACTION_WEIGHTS.values()), pa.float64())
    weight = pc.take(weights, pc.index_in(interactions["interaction_type"], value_set=types))
    table = pa.table({"item_id": interactions["item_id"], "weight": pc.fill_null(weight, 0.0)})
    return _sum_by_item(table)


def merge_counts(current: pa.Table | None, new: pa.Table) -> pa.Table:
    """Add ``new`` counts to ``current`` ones."""
    if current is None:
        return new.cast(COUNTS_SCHEMA)
    return _sum_by_item(pa.concat_tables([current.cast(COUNTS_SCHEMA), new.cast(COUNTS_SCHEMA)]))


def _sum_by_item(table: pa.Table) -> pa.Table:
    summed = table.group_by("item_id").aggregate([("weight", "sum")])
    return pa.table({"item_id": summed["item_id"], "weight": summed["weight_sum"]}, schema=COUNTS_SCHEMA)


def popular_document(counts: pa.Table, catalog: pa.Table, limit: int = POPULAR_LIMIT) -> dict[str, Any]:
    """``{"overall": [...], "by_category": {category: [...]}}`` of catalogue items, most popular first.

    Entries carry what serving shows (item_id, score in [0, 1], title, category, brand, price), so
    serving needs nothing else to answer. Items nobody interacted with are not listed.
    """
    in_catalog = pc.is_in(counts["item_id"], value_set=catalog["item_id"])
    counts = counts.filter(in_catalog)
    if counts.num_rows == 0:
        return PopularDocument().document()
    rows = catalog.select(["item_id", "title", "category", "brand", "price"]).join(
        counts, "item_id", join_type="inner"
    )
    rows = rows.sort_by([("weight", "descending"), ("item_id", "ascending")])
    top = float(rows["weight"][0].as_py()) or 1.0
    entries = [
        PopularEntry(
            item_id=row["item_id"],
            score=round(row["weight"] / top, 6),
            title=row["title"],
            category=row["category"],
            brand=row["brand"],
            price=row["price"],
        )
        for row in rows.to_pylist()
    ]
    by_category: dict[str, list[PopularEntry]] = {}
    for entry in entries:
        bucket = by_category.setdefault(entry.category, [])
        if len(bucket) < limit:
            bucket.append(entry)
    return PopularDocument(overall=entries[:limit], by_category=by_category).document()
