"""A loaded model version: item table, users' training histories, popular lists, index and user tower.

A ``ModelBundle`` is built completely before anyone sees it and never changes afterwards (apart from its
internal cache of filter bitmaps), so swapping the reference to a new bundle is atomic for readers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from functions.serving.filters import ItemFilters, excluded_rows, row_key, row_mask
from functions.serving.popular import PopularLists
from functions.serving.search import AllowedSet, VectorSearch
from functions.serving.tower import UserTower

_FILTER_CACHE_SIZE = 128


def _sorted_lookup(keys: npt.NDArray[np.str_]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_]]:
    order = np.argsort(keys, kind="stable").astype(np.int64)
    return order, keys[order]


def _find(
    order: npt.NDArray[np.int64], sorted_keys: npt.NDArray[np.str_], wanted: Sequence[str]
) -> npt.NDArray[np.int64]:
    """Index of each wanted key in the original array, -1 where absent."""
    if not wanted or sorted_keys.size == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    query = np.asarray(list(wanted), dtype=np.str_)
    pos = np.searchsorted(sorted_keys, query)
    pos = np.minimum(pos, sorted_keys.size - 1)
    hit = sorted_keys[pos] == query
    return np.where(hit, order[pos], -1)


class ItemCatalog:
    """Items in index order (``lookup.npz``), with id lookup: the ``ItemTable`` the filters judge
    (``functions.serving.filters``).

    ``available`` (default: every item) and ``extra_categories`` come from the current catalogue
    (``functions.serving.catalog``): an unavailable item passes no filter, and a category of the
    current catalogue is known to filters even when the version has no item in it.
    """

    def __init__(
        self,
        item_ids: npt.NDArray[np.str_],
        titles: npt.NDArray[np.str_],
        categories: npt.NDArray[np.str_],
        brands: npt.NDArray[np.str_],
        prices: npt.NDArray[np.float64],
        available: npt.NDArray[np.bool_] | None = None,
        extra_categories: Sequence[str] = (),
    ) -> None:
        n = item_ids.size
        for name, array in (
            ("titles", titles),
            ("categories", categories),
            ("brands", brands),
            ("prices", prices),
            ("available", available if available is not None else prices),
        ):
            if array.size != n:
                raise ValueError(f"lookup.npz '{name}' has {array.size} entries, 'item_ids' has {n}")
        self.item_ids = item_ids
        self.titles = titles
        self.categories = categories
        self.brands = brands
        self.prices = prices.astype(np.float64, copy=False)
        self.available = available if available is not None else np.ones(n, dtype=bool)
        self._order, self._sorted_ids = _sorted_lookup(item_ids)
        names = np.unique(np.concatenate([categories, np.asarray(list(extra_categories), dtype=np.str_)]))
        self.category_names: tuple[str, ...] = tuple(str(name) for name in names)
        self.category_codes = np.searchsorted(names, categories).astype(np.int32)

    @property
    def size(self) -> int:
        """Number of items."""
        return int(self.item_ids.size)

    def index_of(self, item_id: str) -> int:
        """The item's index, or -1."""
        return int(_find(self._order, self._sorted_ids, [item_id])[0])

    def lookup(self, item_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """The index of each id, -1 for ids the model does not know (aligned with ``item_ids``)."""
        return _find(self._order, self._sorted_ids, list(item_ids))

    def indices_of(self, item_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Indices of the known ids among ``item_ids`` (unknown ones are dropped), in the given order."""
        found = self.lookup(item_ids)
        return found[found >= 0]

    def price(self, index: int) -> float | None:
        """An item's price (None when unknown)."""
        value = float(self.prices[index])
        return value if value == value else None

    def filter_mask(self, filters: ItemFilters) -> npt.NDArray[np.bool_]:
        """Available items passing every row filter; exclusions are not applied here."""
        return row_mask(filters, self)


class UserHistory:
    """The users of the training data and their interactions (a CSR, most recent first)."""

    def __init__(
        self,
        user_ids: npt.NDArray[np.str_],
        indptr: npt.NDArray[np.int64],
        items: npt.NDArray[np.int32],
        types: npt.NDArray[np.int8],
        n_items: int,
    ) -> None:
        if indptr.size != user_ids.size + 1:
            raise ValueError("lookup.npz 'history_indptr' must have n_users + 1 entries")
        if items.size != types.size or (indptr.size and int(indptr[-1]) != items.size):
            raise ValueError("lookup.npz history arrays are inconsistent")
        if items.size and (int(items.min()) < 0 or int(items.max()) >= n_items):
            raise ValueError("lookup.npz 'history_items' has indices outside the item table")
        self.user_ids = user_ids
        self.indptr = indptr.astype(np.int64, copy=False)
        self.items = items
        self.types = types
        self._order, self._sorted_ids = _sorted_lookup(user_ids)

    @property
    def size(self) -> int:
        """Number of known users."""
        return int(self.user_ids.size)

    def user_index(self, user_id: str) -> int:
        """The user's index in the trained model, or -1 for a user the model has not seen."""
        return int(_find(self._order, self._sorted_ids, [user_id])[0])

    def history(self, user_index: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """A known user's training interactions: item indices and type codes, most recent first."""
        if user_index < 0:
            return np.empty(0, np.int64), np.empty(0, np.int8)
        start, stop = int(self.indptr[user_index]), int(self.indptr[user_index + 1])
        return self.items[start:stop].astype(np.int64), self.types[start:stop]


@dataclass
class ModelBundle:
    """Everything one version needs to answer, built before it is published to readers."""

    tenant_id: str
    version: str
    model_type: str
    manifest_key: str
    trained_until: datetime | None
    catalog: ItemCatalog
    users: UserHistory
    popular: PopularLists
    search: VectorSearch
    tower: UserTower
    # Where cold users' fill-up items are searched from: the mean vector of the best popular items.
    popular_centroid: npt.NDArray[np.float32]
    _filters: OrderedDict[tuple[Hashable, ...], AllowedSet] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allowed(self, filters: ItemFilters, *, without: npt.ArrayLike = ()) -> AllowedSet:
        """The bitmap of items passing every filter, less the item indices ``without``.

        The row filters' bitmap is cached per combination; excluded ids are removed per request.
        """
        excluded = np.concatenate(
            [excluded_rows(filters, self.catalog), np.asarray(without, dtype=np.int64).reshape(-1)]
        )
        return self._row_bitmap(filters).without(excluded)

    def _row_bitmap(self, filters: ItemFilters) -> AllowedSet:
        key = row_key(filters)
        with self._lock:
            cached = self._filters.get(key)
            if cached is not None:
                self._filters.move_to_end(key)
                return cached
        allowed = AllowedSet.from_mask(self.catalog.filter_mask(filters))
        with self._lock:
            self._filters[key] = allowed
            while len(self._filters) > _FILTER_CACHE_SIZE:
                self._filters.popitem(last=False)
        return allowed
