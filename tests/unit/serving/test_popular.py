"""Popular lists without a model: parsing and filtered ranking."""

from __future__ import annotations

import pytest

from functions.serving.filters import ItemFilters
from functions.serving.popular import PopularLists, rank_popular

DOCUMENT = {
    "overall": [
        {
            "item_id": "i1",
            "score": 1.0,
            "title": "Phone",
            "category": "Smartphones",
            "brand": "A",
            "price": 999.0,
        },
        {"item_id": "i2", "score": 0.8, "title": "Buds", "category": "Audio", "brand": "B", "price": 199.0},
        {
            "item_id": "i3",
            "score": 0.5,
            "title": "Cable",
            "category": "Accessories",
            "brand": "C",
            "price": None,
        },
    ],
    "by_category": {
        "Smartphones": [
            {
                "item_id": "i1",
                "score": 1.0,
                "title": "Phone",
                "category": "Smartphones",
                "brand": "A",
                "price": 999.0,
            }
        ],
        "Audio": [
            {
                "item_id": "i2",
                "score": 0.8,
                "title": "Buds",
                "category": "Audio",
                "brand": "B",
                "price": 199.0,
            },
            {
                "item_id": "i4",
                "score": 0.3,
                "title": "Speaker",
                "category": "Audio",
                "brand": "B",
                "price": 89.0,
            },
        ],
    },
}


def test_popular_items_pass_the_filters_best_first() -> None:
    lists = PopularLists.parse(DOCUMENT)

    overall = rank_popular(lists, ItemFilters(), excluded=frozenset(), count=10)
    audio_cheap = rank_popular(
        lists, ItemFilters(categories=("Audio",), max_price=100), excluded=frozenset(), count=10
    )
    two = rank_popular(
        lists, ItemFilters(categories=("Audio", "Smartphones")), excluded=frozenset({"i1"}), count=10
    )

    assert [i.item_id for i in overall] == ["i1", "i2", "i3"]
    assert [i.item_id for i in audio_cheap] == ["i4"]
    assert [i.item_id for i in two] == ["i2", "i4"]
    assert overall[1].reason == "Popular in Audio"
    assert lists.categories() == {"Smartphones", "Audio", "Accessories"}


def test_an_item_without_price_fails_any_price_bound() -> None:
    lists = PopularLists.parse(DOCUMENT)

    assert "i3" not in {
        i.item_id for i in rank_popular(lists, ItemFilters(min_price=0), excluded=frozenset(), count=9)
    }


@pytest.mark.parametrize("bad", [[], {"overall": {}}, {"overall": [{"score": 1}]}, {"by_category": []}])
def test_malformed_documents_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        PopularLists.parse(bad)
