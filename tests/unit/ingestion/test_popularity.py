"""Popularity counts and the popular-items document."""

from __future__ import annotations

import pyarrow as pa

from contract.interactions import INTERACTION_WEIGHTS as WEIGHT
from functions.ingestion.popularity import count_items, merge_counts, popular_document

CATALOG = pa.table(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["A", "B", "C", "D"],
        "category": ["Audio", "Audio", "Laptops", "Laptops"],
        "brand": ["Sony", "Bose", "Dell", "HP"],
        "price": [10.0, 20.0, 900.0, 800.0],
    }
)


def _events(*pairs: tuple[str, str]) -> pa.Table:
    return pa.table({"item_id": [p[0] for p in pairs], "interaction_type": [p[1] for p in pairs]})


def test_counts_weight_purchases_above_views() -> None:
    counts = count_items(_events(("a", "view"), ("a", "view"), ("b", "purchase"), ("c", "click")))

    by_item = dict(zip(counts["item_id"].to_pylist(), counts["weight"].to_pylist(), strict=True))
    assert by_item == {"a": 2 * WEIGHT["view"], "b": WEIGHT["purchase"], "c": WEIGHT["click"]}
    assert WEIGHT["purchase"] > WEIGHT["click"] > WEIGHT["view"]


def test_merge_adds_batches() -> None:
    first = count_items(_events(("a", "view")))
    second = count_items(_events(("a", "purchase"), ("d", "view")))

    merged = merge_counts(merge_counts(None, first), second)

    assert dict(zip(merged["item_id"].to_pylist(), merged["weight"].to_pylist(), strict=True)) == {
        "a": WEIGHT["view"] + WEIGHT["purchase"],
        "d": WEIGHT["view"],
    }


def test_document_ranks_overall_and_per_category_and_skips_unknown_items() -> None:
    counts = count_items(_events(("b", "purchase"), ("a", "view"), ("c", "click"), ("zzz", "purchase")))

    document = popular_document(counts, CATALOG)

    assert [e["item_id"] for e in document["overall"]] == ["b", "c", "a"]
    assert document["overall"][0] == {
        "item_id": "b",
        "score": 1.0,
        "title": "B",
        "category": "Audio",
        "brand": "Bose",
        "price": 20.0,
    }
    assert [e["item_id"] for e in document["by_category"]["Audio"]] == ["b", "a"]
    assert [e["item_id"] for e in document["by_category"]["Laptops"]] == ["c"]


def test_document_is_empty_without_counts() -> None:
    assert popular_document(count_items(_events(("zzz", "view"))), CATALOG) == {
        "overall": [],
        "by_category": {},
    }
