"""Every ranking path honours every declared filter (``functions.serving.filters.FILTERS``).

The paths are driven through ``RecommendationService`` with in-memory collaborators: a model (known
users, users with fresh events, cold users from popular lists and the centroid search), an A/B arm's
pinned version, no model (popular lists, overall and by category) and the newcomers that fill up a
short answer. Each filter has an example here, built from the path's unfiltered answer so that the
unfiltered answer holds an item the filter must remove, and a plain predicate that judges an item by
the current catalogue. A filter declared without an example fails ``test_every_filter_has_an_example``;
a path that skips a filter fails ``test_every_path_honours_every_filter``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contract.catalog_view import CatalogColumns
from embedrec_local import synthetic_models as synthetic
from functions.analytics.domain import AbTest, Variant
from functions.serving.bundle import ModelBundle
from functions.serving.cache import ResponseCache
from functions.serving.catalog import CurrentCatalog, rebase_model
from functions.serving.domain import POPULAR, Ranking, RecommendationQuery, ScoredItem, UserEvent, UserFeed
from functions.serving.filters import FILTERS, EntryTable, ItemFilters, excluded_rows, passing, row_mask
from functions.serving.popular import PopularEntry, PopularLists
from functions.serving.service import RecommendationService
from functions.serving.store.model_store import TenantModel
from tests.unit.serving.conftest import TENANT, bundle_for

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NEWCOMERS = 30
KNOWN_USER = "user_0001"


@dataclass(frozen=True)
class Row:
    """An item as the current catalogue has it (what the predicates judge)."""

    category: str
    brand: str
    price: float | None


@dataclass(frozen=True)
class Example:
    """How to ask for one filter given the path's unfiltered items, and how to judge an item by it."""

    make: Callable[[Sequence[ScoredItem], dict[str, Row]], ItemFilters]
    accepts: Callable[[ItemFilters, str, Row], bool]


def _other_value(items: Sequence[ScoredItem], rows: dict[str, Row], column: str) -> str:
    """A value of ``column`` other than the first item's: one of the other items' if they have one."""
    first = str(getattr(rows[items[0].item_id], column))
    among_items = {str(getattr(rows[item.item_id], column)) for item in items} - {first}
    return sorted(among_items or {str(getattr(row, column)) for row in rows.values()} - {first})[0]


def _another_category(items: Sequence[ScoredItem], rows: dict[str, Row]) -> ItemFilters:
    return ItemFilters(categories=(_other_value(items, rows, "category"),))


def _price_range_without_the_first(items: Sequence[ScoredItem], rows: dict[str, Row]) -> ItemFilters:
    prices = [rows[item.item_id].price for item in items]
    first = prices[0]
    assert first is not None
    if first >= float(np.median([p for p in prices if p is not None])):
        return ItemFilters(max_price=first - 0.01)
    return ItemFilters(min_price=first + 0.01)


def _in_price_range(filters: ItemFilters, _item_id: str, row: Row) -> bool:
    if filters.min_price is None and filters.max_price is None:
        return True
    if row.price is None:
        return False
    return (filters.min_price is None or row.price >= filters.min_price) and (
        filters.max_price is None or row.price <= filters.max_price
    )


#: One example per declared filter (keyed by ``name``).
EXAMPLES: dict[str, Example] = {
    "category": Example(_another_category, lambda f, _id, row: row.category in f.categories),
    "price": Example(_price_range_without_the_first, _in_price_range),
    "exclude_ids": Example(
        lambda items, _rows: ItemFilters(exclude_ids=frozenset(item.item_id for item in items[:3])),
        lambda f, item_id, _row: item_id not in f.exclude_ids,
    ),
}


class _Models:
    def __init__(self, active: TenantModel, pinned: TenantModel) -> None:
        self.active, self.pinned = active, pinned

    def get(self, _tenant_id: str) -> TenantModel:
        return self.active

    def get_version(self, _tenant_id: str, version: str) -> TenantModel | None:
        return self.pinned if version == self.pinned.version else None


class _Events:
    def __init__(self, events: dict[str, list[UserEvent]]) -> None:
        self.events = events

    def feed(self, _tenant_id: str, user_id: str, _limit: int) -> UserFeed:
        return UserFeed(self.events.get(user_id, []))


class _Catalogs:
    def __init__(self, current: CurrentCatalog) -> None:
        self.current = current

    def current_model(self, _tenant_id: str, model: TenantModel, *, recheck: bool = False) -> TenantModel:
        del recheck
        return rebase_model(model, self.current)


class _AbTests:
    def __init__(self, version: str) -> None:
        self.test = AbTest(
            test_id="ab_1",
            name="everyone on the variant",
            variants=(Variant("control", version, 100),),
            metric="click_through_rate",
            duration_days=7,
            started_at=NOW - timedelta(days=1),
            ends_at=NOW + timedelta(days=6),
            created_at=NOW - timedelta(days=1),
        )

    def running(self, _tenant_id: str, _now: datetime) -> AbTest:
        return self.test


@dataclass(frozen=True)
class Shop:
    """The tenant's versions and current catalogue (the model's items plus newcomers)."""

    active: TenantModel
    pinned: TenantModel
    without_model: TenantModel
    current: CurrentCatalog
    rows: dict[str, Row]
    largest_category: str  # what the by-category paths ask for


def _short_lists(lists: PopularLists) -> PopularLists:
    # Short lists, so cold answers also come from the centroid search.
    return PopularLists(lists.overall[:6], {name: group[:2] for name, group in lists.by_category.items()})


@pytest.fixture(scope="module")
def shop() -> Shop:
    world = synthetic.make_world(80, 40, seed=5)
    v1, v2 = bundle_for(world, version="v1"), bundle_for(world, version="v2")
    short = _short_lists(v1.popular)
    columns: dict[str, list[object]] = {
        "item_id": world.item_ids.tolist() + [f"new_{n}" for n in range(NEWCOMERS)],
        "title": world.titles.tolist() + [f"New {n}" for n in range(NEWCOMERS)],
        "category": world.categories.tolist() + [synthetic.CATEGORIES[n % 8] for n in range(NEWCOMERS)],
        "brand": world.brands.tolist() + [("Acme", "Globex", "Initech")[n % 3] for n in range(NEWCOMERS)],
        "price": world.prices.tolist() + [float(10 + 97 * n) for n in range(NEWCOMERS)],
        "available": [True] * (world.item_ids.size + NEWCOMERS),
        "popularity": world.popularity.tolist() + [0.0] * NEWCOMERS,
    }
    current = CurrentCatalog(CatalogColumns(**columns), "etag-1")  # type: ignore[arg-type]
    rows = {
        str(item_id): Row(str(category), str(brand), None if price != price else float(price))
        for item_id, category, brand, price in zip(
            current.item_ids, current.categories, current.brands, current.prices, strict=True
        )
    }
    return Shop(
        active=TenantModel(replace(v1, popular=short), short),
        pinned=TenantModel(replace(v2, popular=short), short),
        without_model=TenantModel(None, v1.popular),
        current=current,
        rows=rows,
        largest_category=str(
            max(synthetic.CATEGORIES, key=lambda name: int((world.categories == name).sum()))
        ),
    )


@dataclass(frozen=True)
class Path:
    """One way an answer is ranked: who asks, with which model, and which items of it the path made."""

    user_id: str
    count: int = 10
    with_model: bool = True
    ab_test: bool = False
    category: bool = False  # asks for one category too (the by-category lists)
    made_here: Callable[[ScoredItem], bool] = lambda _item: True
    expected_algorithm: str | None = None


PATHS: dict[str, Path] = {
    "model: known user": Path(KNOWN_USER, expected_algorithm="lightgcn"),
    "model: walk-in with fresh events": Path("walk_in", expected_algorithm="lightgcn"),
    "model: cold user, popular lists": Path(
        "stranger", made_here=lambda item: item.score > 0, expected_algorithm=POPULAR
    ),
    "model: cold user, centroid search": Path(
        "stranger", made_here=lambda item: item.reason.startswith("Similar to"), expected_algorithm=POPULAR
    ),
    "model: cold user, by category": Path("stranger", category=True, expected_algorithm=POPULAR),
    "A/B arm: pinned version": Path(KNOWN_USER, ab_test=True, expected_algorithm="lightgcn"),
    "no model: popular lists": Path("stranger", with_model=False, made_here=lambda item: item.score > 0),
    "no model: popular by category": Path(
        "stranger", with_model=False, category=True, made_here=lambda item: item.score > 0
    ),
    "newcomers fill up a short answer": Path(
        KNOWN_USER, count=100, made_here=lambda item: item.item_id.startswith("new_")
    ),
}


def _answer(shop: Shop, path: Path, filters: ItemFilters) -> tuple[ScoredItem, ...]:
    events = {"walk_in": [UserEvent("item_0005", "click", NOW - timedelta(hours=1), "e1")]}
    service = RecommendationService(
        _Models(shop.active if path.with_model else shop.without_model, shop.pinned),  # type: ignore[arg-type]
        _Events(events),  # type: ignore[arg-type]
        ResponseCache[Ranking](100, 60.0),
        recent_events_limit=50,
        fold_in_half_life_hours=24,
        ab_tests=_AbTests(shop.pinned.version or "") if path.ab_test else None,  # type: ignore[arg-type]
        catalogs=_Catalogs(shop.current),  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    if path.category and not filters.categories:
        filters = replace(filters, categories=(shop.largest_category,))
    result = service.recommend(TENANT, RecommendationQuery(path.user_id, path.count, filters))
    if path.expected_algorithm is not None:
        assert result.algorithm == path.expected_algorithm
    assert (result.ab_test is not None) == path.ab_test
    return result.items


def test_every_filter_has_an_example() -> None:
    assert {declared.name for declared in FILTERS} == set(EXAMPLES)


@pytest.mark.parametrize("name", [declared.name for declared in FILTERS])
@pytest.mark.parametrize("path_name", list(PATHS))
def test_every_path_honours_every_filter(shop: Shop, path_name: str, name: str) -> None:
    path, example = PATHS[path_name], EXAMPLES[name]
    unfiltered = [item for item in _answer(shop, path, ItemFilters()) if path.made_here(item)]
    assert unfiltered, f"{path_name} made no item of the unfiltered answer"
    filters = example.make(unfiltered, shop.rows)
    assert not all(example.accepts(filters, i.item_id, shop.rows[i.item_id]) for i in unfiltered)

    answer = _answer(shop, path, filters)

    assert any(path.made_here(item) for item in answer), f"{path_name} made no item under {filters}"
    rejected = [i.item_id for i in answer if not example.accepts(filters, i.item_id, shop.rows[i.item_id])]
    assert rejected == [], f"{path_name} ignored the {name} filter"


def _entry(item_id: str, category: str, price: float | None, brand: str = "B") -> PopularEntry:
    return PopularEntry(item_id, 1.0, item_id, category, brand, price)


def test_entries_and_the_item_table_are_judged_by_the_same_declarations(bundle: ModelBundle) -> None:
    catalog = bundle.catalog
    rows = range(0, catalog.size, 7)
    entries = [
        _entry(str(catalog.item_ids[i]), str(catalog.categories[i]), catalog.price(i), str(catalog.brands[i]))
        for i in rows
    ]
    excluded = frozenset(entry.item_id for entry in entries[::5])
    for filters in (
        ItemFilters(),
        ItemFilters(categories=("Audio", "Laptops")),
        ItemFilters(min_price=100, max_price=900, exclude_ids=excluded),
        ItemFilters(categories=("Cameras",), max_price=2000, exclude_ids=excluded),
    ):
        mask = row_mask(filters, catalog)
        mask[excluded_rows(filters, catalog)] = False

        judged = {entry.item_id for entry in passing(filters, entries)}

        assert judged == {str(catalog.item_ids[i]) for i in rows if mask[i]}


def test_entries_without_a_price_fail_any_price_bound_and_excluded_ids_are_dropped() -> None:
    entries = [_entry("a", "Audio", None), _entry("b", "Audio", 50.0), _entry("c", "Laptops", 900.0)]

    assert [e.item_id for e in passing(ItemFilters(min_price=0), entries)] == ["b", "c"]
    assert [e.item_id for e in passing(ItemFilters(), entries, excluded={"c", "zz"})] == ["a", "b"]
    assert [e.item_id for e in passing(ItemFilters(exclude_ids=frozenset({"a"})), entries)] == ["b", "c"]
    assert passing(ItemFilters(categories=("Tablets",)), entries) == []
    assert EntryTable(entries).lookup(["c", "x"]).tolist() == [2, -1]


def test_cache_keys_name_every_filter_and_ignore_order() -> None:
    one = ItemFilters(categories=("A", "B"), min_price=1.0, exclude_ids=frozenset({"x", "y"}))
    same = ItemFilters(categories=("B", "A"), min_price=1.0, exclude_ids=frozenset({"y", "x"}))

    assert one.cache_key() == same.cache_key()
    assert len(one.cache_key()) == len(FILTERS)
    assert ItemFilters().is_empty and not one.is_empty


def test_a_limit_judges_the_list_in_chunks_with_the_same_answer() -> None:
    entries = [_entry(f"i{n}", ("Audio", "Laptops", "Tablets")[n % 3], float(n)) for n in range(500)]
    filters = ItemFilters(categories=("Tablets",), min_price=300, exclude_ids=frozenset({"i302"}))
    everything = passing(filters, entries, excluded={"i305"})

    assert everything[:2] == [entries[308], entries[311]]
    for limit in (1, 10, 33, 64, 1000):
        assert passing(filters, entries, excluded={"i305"}, limit=limit) == everything[:limit]
