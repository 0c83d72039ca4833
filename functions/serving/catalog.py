"""The tenant's current catalogue in serving: every answer is judged by it, whichever version ranks.

A model version carries the catalogue as it was when it was trained (``lookup.npz``, ``popular.json``),
but shops change titles, prices, categories and availability between trainings, remove items and add
new ones. Ingestion keeps a serving view of the current catalogue (``contract.catalog_view``);
``CatalogViews`` re-checks it per tenant on invocation, at most every ``check_seconds`` (one
conditional GET, answered 304 when nothing changed; no background thread), and rebases each loaded
version on it once per change (``CatalogViews.current_model``):

- the version's item table takes the current title, category, brand and price, and items removed or
  unavailable leave every filter bitmap (``ItemCatalog.filter_mask``), so no ranking path — model,
  popular, similar, an A/B variant's pinned version — can return them;
- filters know the current catalogue's categories, new ones included;
- popular lists take the current details and lose the items that cannot be served;
- available items the version has no vector for (``newcomers``: new since training) fill up answers
  that run short, by current popularity and then newest first (``top_up``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from contract import catalog_view, layout
from functions.common.errors import NotFoundError, ServiceUnavailableError
from functions.common.in_flight import InFlight
from functions.common.observability import logger
from functions.serving.bundle import ItemCatalog
from functions.serving.domain import Ranking, RecommendedItem
from functions.serving.filters import ItemFilters, passing
from functions.serving.popular import PopularEntry, PopularLists, popular_reason
from functions.serving.store.model_store import TenantModel
from functions.serving.store.storage import ObjectReader

#: Newcomers kept per category (and overall): an answer needs at most a page of them.
NEWCOMERS_PER_LIST = 500
#: A request naming a category the last check did not know checks again, at most this often per tenant.
RECHECK_SECONDS = 1.0
_MAX_REBASED = 64


class CurrentCatalog:
    """The serving view as arrays, with id lookup; ``tag`` is the object's ETag."""

    def __init__(self, columns: catalog_view.CatalogColumns, tag: str) -> None:
        self.tag = tag
        self.item_ids = np.asarray(columns.item_id, dtype=np.str_)
        self.titles = np.asarray(columns.title, dtype=np.str_)
        self.categories = np.asarray(columns.category, dtype=np.str_)
        self.brands = np.asarray(columns.brand, dtype=np.str_)
        self.prices = np.asarray([np.nan if p is None else p for p in columns.price], dtype=np.float64)
        self.available = np.asarray(columns.available, dtype=bool)
        self.popularity = np.asarray(columns.popularity, dtype=np.float64)
        self._order = np.argsort(self.item_ids, kind="stable").astype(np.int64)
        self._sorted_ids = self.item_ids[self._order]
        self.category_names: tuple[str, ...] = tuple(str(name) for name in np.unique(self.categories))

    @property
    def size(self) -> int:
        """Number of items in the catalogue (available or not)."""
        return int(self.item_ids.size)

    def lookup(self, item_ids: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
        """Each id's position in the catalogue, -1 where it is not in it."""
        if item_ids.size == 0 or self.size == 0:
            return np.full(item_ids.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted_ids, item_ids), self.size - 1)
        return np.where(self._sorted_ids[pos] == item_ids, self._order[pos], -1)

    def entry(self, position: int) -> PopularEntry:
        """One item as a list entry (score: its popularity)."""
        price = float(self.prices[position])
        return PopularEntry(
            item_id=str(self.item_ids[position]),
            score=float(self.popularity[position]),
            title=str(self.titles[position]),
            category=str(self.categories[position]),
            brand=str(self.brands[position]),
            price=price if price == price else None,
        )


@dataclass
class _View:
    catalog: CurrentCatalog | None  # None: the tenant has no catalogue view (nothing uploaded yet)
    checked_at: float


@dataclass(frozen=True)
class _Rebased:
    source: TenantModel
    tag: str
    model: TenantModel


class CatalogViews:
    """Per tenant, the current catalogue (checked on invocation) and the versions rebased on it."""

    def __init__(
        self,
        reader: ObjectReader,
        *,
        check_seconds: float,
        max_tenants: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._check_seconds = check_seconds
        self._max_tenants = max_tenants
        self._clock = clock
        self._views: OrderedDict[str, _View] = OrderedDict()
        self._rebased: OrderedDict[tuple[str, str | None], _Rebased] = OrderedDict()
        self._checking = InFlight()
        self._lock = threading.Lock()

    def current(self, tenant_id: str, *, recheck: bool = False) -> CurrentCatalog | None:
        """The tenant's current catalogue, re-checked when older than ``check_seconds`` (or, with
        ``recheck``, than ``RECHECK_SECONDS``).

        While one request re-checks, the others answer with the view they have; a store that cannot be
        read keeps the last view (logged) and is asked again at the next request.
        """
        with self._lock:
            view = self._views.get(tenant_id)
            if view is not None:
                self._views.move_to_end(tenant_id)
        interval = min(self._check_seconds, RECHECK_SECONDS) if recheck else self._check_seconds
        if view is not None and self._clock() - view.checked_at < interval:
            return view.catalog
        if view is not None and not self._checking.claim(tenant_id):
            return view.catalog
        try:
            checked_at = self._clock()
            catalog = self._read(tenant_id, view.catalog if view is not None else None)
        except ServiceUnavailableError:
            logger.warning("catalogue view unavailable; keeping the last one", extra={"tenant_id": tenant_id})
            return view.catalog if view is not None else None
        finally:
            if view is not None:
                self._checking.release(tenant_id)
        with self._lock:
            self._views[tenant_id] = _View(catalog, checked_at)
            self._views.move_to_end(tenant_id)
            while len(self._views) > self._max_tenants:
                self._views.popitem(last=False)
        return catalog

    def current_model(self, tenant_id: str, model: TenantModel, *, recheck: bool = False) -> TenantModel:
        """``model`` judged by the tenant's current catalogue (rebased once per catalogue change)."""
        catalog = self.current(tenant_id, recheck=recheck)
        if catalog is None:
            return model
        key = (tenant_id, model.version)
        with self._lock:
            cached = self._rebased.get(key)
        if cached is not None and cached.source is model and cached.tag == catalog.tag:
            return cached.model
        started = time.perf_counter()
        rebased = rebase_model(model, catalog)
        logger.info(
            "model rebased on the current catalogue",
            extra={
                "tenant_id": tenant_id,
                "version": model.version,
                "items": catalog.size,
                "rebase_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        with self._lock:
            self._rebased[key] = _Rebased(model, catalog.tag, rebased)
            self._rebased.move_to_end(key)
            # A replaced or evicted version must not live on here: it would stay resident.
            for stale in [k for k, entry in self._rebased.items() if _released(entry.source)]:
                del self._rebased[stale]
            while len(self._rebased) > _MAX_REBASED:
                self._rebased.popitem(last=False)
        return rebased

    def _read(self, tenant_id: str, known: CurrentCatalog | None) -> CurrentCatalog | None:
        key = layout.catalog_view_key(tenant_id)
        try:
            changed = self._reader.get_if_changed(key, known.tag if known is not None else None)
        except NotFoundError:
            return None
        if changed is None:
            return known
        data, tag = changed
        try:
            return CurrentCatalog(catalog_view.decode(data), tag)
        except ValueError as exc:
            logger.error("catalogue view unreadable", extra={"tenant_id": tenant_id, "error": str(exc)})
            return known


def _released(model: TenantModel) -> bool:
    return model.bundle is not None and model.bundle.released


def rebase_model(model: TenantModel, catalog: CurrentCatalog) -> TenantModel:
    """``model`` with the current details, availability and categories, and the catalogue's newcomers."""
    popular = rebase_popular(model.popular, catalog)
    if model.bundle is None:
        unranked = catalog.available
        return replace(
            model, popular=popular, newcomers=_newcomers(catalog, unranked), catalog_tag=catalog.tag
        )
    bundle = model.bundle
    base = bundle.catalog
    pos = catalog.lookup(base.item_ids)
    found = pos >= 0
    safe = np.where(found, pos, 0)

    def current(now: npt.NDArray[np.str_], before: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
        return np.where(found, now[safe], before) if catalog.size else before

    items = ItemCatalog(
        base.item_ids,
        current(catalog.titles, base.titles),
        current(catalog.categories, base.categories),
        current(catalog.brands, base.brands),
        np.where(found, catalog.prices[safe], base.prices) if catalog.size else base.prices,
        available=found & catalog.available[safe] if catalog.size else np.zeros(base.size, dtype=bool),
        extra_categories=catalog.category_names,
        ids=base.ids,  # same ids, same order: the version's (possibly mapped) id index is shared
    )
    rebased = replace(bundle, catalog=items, popular=popular, _filters=OrderedDict(), _lock=threading.Lock())
    unranked = catalog.available & (base.lookup(list(catalog.item_ids)) < 0)
    return replace(
        model,
        bundle=rebased,
        popular=popular,
        newcomers=_newcomers(catalog, unranked),
        catalog_tag=catalog.tag,
    )


def rebase_popular(lists: PopularLists, catalog: CurrentCatalog) -> PopularLists:
    """The lists with current details, without items removed or unavailable, grouped by current category."""
    entries = {entry.item_id: entry for entry in lists.overall}
    for group in lists.by_category.values():
        for entry in group:
            entries.setdefault(entry.item_id, entry)
    ids = np.asarray(list(entries), dtype=np.str_)
    positions = catalog.lookup(ids).tolist()
    current: dict[str, PopularEntry] = {}
    for item_id, position in zip(ids.tolist(), positions, strict=True):
        if position >= 0 and catalog.available[position]:
            fresh = catalog.entry(position)
            current[item_id] = replace(fresh, score=entries[item_id].score)
    overall = tuple(current[entry.item_id] for entry in lists.overall if entry.item_id in current)
    by_category: dict[str, list[PopularEntry]] = {}
    for entry in sorted(current.values(), key=lambda e: e.score, reverse=True):
        by_category.setdefault(entry.category, []).append(entry)
    return PopularLists(overall, {name: tuple(group) for name, group in by_category.items()})


def _newcomers(catalog: CurrentCatalog, unranked: npt.NDArray[np.bool_]) -> PopularLists:
    # Most popular first, then the newest upload first (the catalogue keeps upload order).
    positions = np.flatnonzero(unranked)
    order = np.lexsort((-positions, -catalog.popularity[positions]))
    overall: list[PopularEntry] = []
    by_category: dict[str, list[PopularEntry]] = {}
    for position in positions[order].tolist():
        category = str(catalog.categories[position])
        group = by_category.setdefault(category, [])
        if len(group) < NEWCOMERS_PER_LIST:
            group.append(catalog.entry(position))
        if len(overall) < NEWCOMERS_PER_LIST:
            overall.append(catalog.entry(position))
    return PopularLists(tuple(overall), {name: tuple(group) for name, group in by_category.items()})


def top_up(
    ranking: Ranking, newcomers: PopularLists, filters: ItemFilters, excluded: frozenset[str], count: int
) -> Ranking:
    """``ranking`` filled up to ``count`` with newcomers that pass the filters, below every ranked item."""
    if len(ranking.items) >= count or not newcomers.overall:
        return ranking
    taken = {item.item_id for item in ranking.items} | excluded
    wanted = count - len(ranking.items)
    extra: list[RecommendedItem] = []
    for entry in passing(filters, newcomers.candidates(filters.categories), excluded=taken, limit=wanted):
        reason = popular_reason(entry.category) if entry.score > 0 else f"New in {entry.category}"
        extra.append(RecommendedItem(entry.item_id, entry.title, 0.0, entry.category, entry.price, reason))
    return replace(ranking, items=ranking.items + tuple(extra)) if extra else ranking
