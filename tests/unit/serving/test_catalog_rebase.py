"""Rebasing a loaded version on the current catalogue: details, availability, categories, newcomers."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from contract.catalog_view import CatalogColumns
from embedrec_local import synthetic_models as synthetic
from functions.serving.bundle import ModelBundle
from functions.serving.catalog import CurrentCatalog, rebase_model, top_up
from functions.serving.domain import Ranking, RecommendationQuery
from functions.serving.filters import ItemFilters
from functions.serving.ranking import rank_for_user, rank_similar
from functions.serving.store.model_store import TenantModel

NOW = datetime(2025, 1, 8, tzinfo=UTC)


def _current(world: synthetic.SyntheticWorld, **changes: dict[int, object]) -> CurrentCatalog:
    """The world's catalogue with per-index changes (``title={3: "X"}``), plus one new item."""
    columns: dict[str, list[object]] = {
        "item_id": world.item_ids.tolist(),
        "title": world.titles.tolist(),
        "category": world.categories.tolist(),
        "brand": world.brands.tolist(),
        "price": world.prices.tolist(),
        "available": [True] * world.item_ids.size,
        "popularity": world.popularity.tolist(),
    }
    for name, by_index in changes.items():
        for index, value in by_index.items():
            columns[name][index] = value
    new = {"item_id": "new_1", "title": "New", "category": "Drones", "brand": "B", "price": 9.0}
    for name, value in (new | {"available": True, "popularity": 0.0}).items():
        columns[name].append(value)
    return CurrentCatalog(CatalogColumns(**columns), "etag-1")  # type: ignore[arg-type]


def test_current_details_and_categories_replace_the_versions(
    world: synthetic.SyntheticWorld, bundle: ModelBundle
) -> None:
    current = _current(world, title={3: "Renamed"}, price={3: 1.5}, category={3: "Clearance"})

    rebased = rebase_model(TenantModel(bundle, bundle.popular), current)

    assert rebased.bundle is not None and rebased.catalog_tag == "etag-1"
    catalog = rebased.bundle.catalog
    assert (str(catalog.titles[3]), catalog.price(3), str(catalog.categories[3])) == (
        "Renamed",
        1.5,
        "Clearance",
    )
    assert {"Clearance", "Drones"} <= set(catalog.category_names)
    allowed = np.flatnonzero(catalog.filter_mask(ItemFilters(categories=("Clearance",))))
    assert allowed.tolist() == [3]
    assert str(bundle.catalog.titles[3]) != "Renamed"  # the loaded version itself is untouched


def test_unavailable_and_removed_items_pass_no_filter_and_no_ranking(
    world: synthetic.SyntheticWorld, bundle: ModelBundle
) -> None:
    user = 0
    query = RecommendationQuery(str(world.user_ids[user]), 10)
    first = rank_for_user(bundle, query, [], now=NOW, half_life_hours=24)
    hidden = [int(bundle.catalog.index_of(item.item_id)) for item in first.items[:3]]
    current = _current(world, available={hidden[0]: False, hidden[1]: False})
    current = CurrentCatalog(  # and hidden[2] removed from the catalogue altogether
        CatalogColumns(
            **{
                name: [v for i, v in enumerate(getattr(current, attr).tolist()) if i != hidden[2]]
                for name, attr in (
                    ("item_id", "item_ids"),
                    ("title", "titles"),
                    ("category", "categories"),
                    ("brand", "brands"),
                    ("price", "prices"),
                    ("available", "available"),
                    ("popularity", "popularity"),
                )
            }
        ),
        "etag-2",
    )

    rebased = rebase_model(TenantModel(bundle, bundle.popular), current).bundle
    assert rebased is not None
    after = rank_for_user(rebased, query, [], now=NOW, half_life_hours=24)
    similar = rank_similar(rebased, str(world.item_ids[hidden[0]]), 20)
    hidden_ids = {str(world.item_ids[index]) for index in hidden}

    assert not hidden_ids & {item.item_id for item in after.items} and len(after.items) == 10
    assert not hidden_ids & {item.item_id for item in similar.items}
    assert not hidden_ids & {entry.item_id for entry in rebased.popular.overall}
    assert rebased.catalog.available.sum() == world.item_ids.size - 3


def test_newcomers_fill_up_a_short_answer_below_every_ranked_item(
    world: synthetic.SyntheticWorld, bundle: ModelBundle
) -> None:
    rebased = rebase_model(TenantModel(bundle, bundle.popular), _current(world))
    filters = ItemFilters(categories=("Drones",))

    empty = Ranking((), algorithm="lightgcn")
    filled = top_up(empty, rebased.newcomers, filters, frozenset(), 5)
    excluded = top_up(empty, rebased.newcomers, filters, frozenset({"new_1"}), 5)
    too_dear = top_up(empty, rebased.newcomers, ItemFilters(("Drones",), max_price=5.0), frozenset(), 5)

    assert [(i.item_id, i.score, i.reason) for i in filled.items] == [("new_1", 0.0, "New in Drones")]
    assert excluded.items == () and too_dear.items == ()
    assert [entry.item_id for entry in rebased.newcomers.overall] == ["new_1"]
