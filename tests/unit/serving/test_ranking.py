"""Ranking with a model: filters, exclusions, fold-in, reasons, popular fallback, similar items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contract.interactions import INTERACTION_WEIGHTS as TYPE_WEIGHTS
from embedrec_local import synthetic_models as synthetic
from functions.common.errors import InvalidInputError, NotFoundError
from functions.serving.bundle import ModelBundle
from functions.serving.domain import POPULAR, RecommendationQuery, UserEvent
from functions.serving.filters import ItemFilters, resolve_categories
from functions.serving.ranking import (
    fold_in_weights,
    rank_for_user,
    rank_similar,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _rank(bundle: ModelBundle, user: str, count: int = 10, events: list[UserEvent] | None = None, **kw):
    filters = kw.pop("filters", ItemFilters())
    query = RecommendationQuery(user, count, filters, **kw)
    return rank_for_user(bundle, query, events or [], now=NOW, half_life_hours=24)


def _event(item: str, kind: str = "click", age_h: float = 0.0, key: str = "k") -> UserEvent:
    return UserEvent(item, kind, NOW - timedelta(hours=age_h), key)


def test_a_known_user_gets_count_items_best_first(bundle: ModelBundle) -> None:
    ranking = _rank(bundle, "user_0001", 10)

    scores = [item.score for item in ranking.items]
    assert len(ranking.items) == 10
    assert scores == sorted(scores, reverse=True)
    assert ranking.algorithm == "lightgcn"


@pytest.mark.parametrize(
    "filters",
    [
        ItemFilters(categories=("Laptops",)),
        ItemFilters(categories=("Laptops", "Tablets"), min_price=1000, max_price=2000),
        ItemFilters(min_price=10, max_price=30),
        ItemFilters(categories=("Accessories",), max_price=6.0),
    ],
)
def test_every_item_satisfies_every_filter_and_count_is_full_when_possible(
    bundle: ModelBundle, world: synthetic.SyntheticWorld, filters: ItemFilters
) -> None:
    mask = bundle.catalog.filter_mask(filters)
    for user in ("user_0001", "user_0042", "user_0300"):
        _items, types = world.history(int(user[5:]) - 1)
        ranking = _rank(bundle, user, 25, filters=filters)

        purchased = set(np.asarray(world.history(int(user[5:]) - 1)[0])[types == 3].tolist())
        assert len(ranking.items) == min(25, int(mask.sum()) - len(purchased & set(np.flatnonzero(mask))))
        for item in ranking.items:
            assert not filters.categories or item.category in filters.categories
            assert filters.price_ok(item.price)
        assert [i.score for i in ranking.items] == sorted((i.score for i in ranking.items), reverse=True)


def test_filtered_ranking_equals_brute_force_over_the_allowed_items(
    bundle: ModelBundle, world: synthetic.SyntheticWorld
) -> None:
    filters = ItemFilters(categories=("Audio",), min_price=100, max_price=300)
    ranking = _rank(bundle, "user_0007", 10, filters=filters, exclude_purchased=False)

    vector = bundle.tower.user_vector(
        bundle.users.user_index("user_0007"), np.empty(0, np.int64), np.empty(0, np.float32)
    )
    scores = np.where(bundle.catalog.filter_mask(filters), world.item_vectors @ vector, -np.inf)
    expected = [str(world.item_ids[i]) for i in np.argsort(-scores)[:10]]
    assert [item.item_id for item in ranking.items] == expected


def test_excluded_ids_and_purchases_never_appear(
    bundle: ModelBundle, world: synthetic.SyntheticWorld
) -> None:
    user = 5
    items, types = world.history(user)
    purchased = {str(world.item_ids[i]) for i in items[types == 3]}
    first = _rank(bundle, f"user_{user + 1:04d}", 10, exclude_purchased=False)
    unwanted = {item.item_id for item in first.items[:3]}
    recent_purchase = first.items[4].item_id

    second = _rank(
        bundle,
        f"user_{user + 1:04d}",
        10,
        filters=ItemFilters(exclude_ids=frozenset(unwanted)),
        events=[_event(recent_purchase, "purchase")],
    )

    shown = {item.item_id for item in second.items}
    assert len(shown) == 10
    assert not shown & unwanted
    assert recent_purchase not in shown
    assert not shown & purchased


def test_purchased_items_can_be_included_on_request(bundle: ModelBundle) -> None:
    first = _rank(bundle, "user_0002", 5, exclude_purchased=False)
    bought = first.items[0].item_id

    again = _rank(bundle, "user_0002", 5, events=[_event(bought, "purchase")], exclude_purchased=False)

    assert bought in {item.item_id for item in again.items}


def test_an_unknown_user_without_events_gets_popular_items(
    bundle: ModelBundle, world: synthetic.SyntheticWorld
) -> None:
    ranking = _rank(bundle, "someone_new", 10)

    overall = synthetic.popular_json(world)["overall"]
    assert ranking.algorithm == POPULAR
    assert [item.item_id for item in ranking.items] == [entry["item_id"] for entry in overall[:10]]
    assert all(item.reason == f"Popular in {item.category}" for item in ranking.items)


def test_a_filtered_cold_user_gets_popular_items_of_that_category_topped_up_to_count(
    bundle: ModelBundle,
) -> None:
    filters = ItemFilters(categories=("Cameras",), min_price=3900)
    available = int(bundle.catalog.filter_mask(filters).sum())

    ranking = _rank(bundle, "someone_new", 30, filters=filters)

    assert len(ranking.items) == min(30, available)
    assert all(item.category == "Cameras" and (item.price or 0) >= 3900 for item in ranking.items)
    assert [i.score for i in ranking.items] == sorted((i.score for i in ranking.items), reverse=True)


def test_a_new_click_moves_an_unknown_user_towards_the_clicked_item(bundle: ModelBundle) -> None:
    clicked = "item_0042"

    ranking = _rank(bundle, "someone_new", 10, events=[_event(clicked)])

    category = bundle.catalog.categories[bundle.catalog.index_of(clicked)]
    assert ranking.algorithm == "lightgcn"
    assert sum(item.category == category for item in ranking.items) >= 8
    assert any(item.reason == f"Because you viewed {category} product 0042" for item in ranking.items)


def test_a_new_click_changes_a_known_users_list(bundle: ModelBundle) -> None:
    before = _rank(bundle, "user_0003", 10)
    far_item = "item_4000"

    after = _rank(bundle, "user_0003", 10, events=[_event(far_item, "add_to_cart")])

    assert [i.item_id for i in before.items] != [i.item_id for i in after.items]


def test_events_from_before_training_are_not_folded_in_for_known_users(bundle: ModelBundle) -> None:
    before = _rank(bundle, "user_0003", 10)
    old = UserEvent("item_4000", "purchase", datetime(2024, 12, 1, tzinfo=UTC), "old")

    after = _rank(bundle, "user_0003", 10, events=[old], exclude_purchased=False)

    assert [i.item_id for i in before.items] == [i.item_id for i in after.items]


def test_fold_in_weights_favour_stronger_and_newer_events() -> None:
    events = [_event("a", "view", 0), _event("b", "purchase", 0), _event("c", "purchase", 48)]

    weights = fold_in_weights(events, NOW, half_life_hours=24)

    assert weights.sum() == pytest.approx(1.0)
    assert weights[1] / weights[0] == pytest.approx(TYPE_WEIGHTS["purchase"] / TYPE_WEIGHTS["view"])
    assert weights[2] / weights[1] == pytest.approx(0.25)  # two half-lives
    assert fold_in_weights([], NOW, 24).size == 0


def test_reasons_name_the_nearest_history_item_and_never_the_item_itself(
    bundle: ModelBundle, world: synthetic.SyntheticWorld
) -> None:
    user = 9
    items, types = world.history(user)
    ranking = _rank(bundle, f"user_{user + 1:04d}", 10, exclude_purchased=False)

    verbs = {0: "viewed", 1: "viewed", 2: "added", 3: "bought"}
    for item in ranking.items:
        index = bundle.catalog.index_of(item.item_id)
        others = [(i, t) for i, t in zip(items.tolist(), types.tolist(), strict=True) if i != index]
        sims = [float(world.item_vectors[index] @ world.item_vectors[i]) for i, _t in others]
        anchor, kind = others[int(np.argmax(sims))]
        assert str(world.titles[anchor]) in item.reason
        assert verbs[kind] in item.reason
        assert item.title not in item.reason


def test_similar_items_exclude_the_item_and_follow_the_index(
    bundle: ModelBundle, world: synthetic.SyntheticWorld
) -> None:
    ranking = rank_similar(bundle, "item_0100", 5)

    index = bundle.catalog.index_of("item_0100")
    scores = world.item_vectors @ world.item_vectors[index]
    scores[index] = -np.inf
    assert [i.item_id for i in ranking.items] == [str(world.item_ids[i]) for i in np.argsort(-scores)[:5]]
    assert all(
        i.reason == f"Customers who bought {world.titles[index]} also bought this" for i in ranking.items
    )
    with pytest.raises(NotFoundError):
        rank_similar(bundle, "item_nope", 5)


def test_categories_resolve_case_insensitively_and_unknown_ones_are_rejected() -> None:
    known = ("Audio", "Laptops")

    assert resolve_categories(ItemFilters(categories=("audio", "LAPTOPS")), known).categories == (
        "Audio",
        "Laptops",
    )
    with pytest.raises(InvalidInputError, match="unknown category 'Toys'.*Audio, Laptops"):
        resolve_categories(ItemFilters(categories=("Audio", "Toys")), known)
