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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from functions.common.observability import logger
from functions.serving.filters import ItemFilters, excluded_rows, row_key, row_mask
from functions.serving.popular import PopularLists
from functions.serving.search import AllowedSet, VectorSearch
from functions.serving.store.version_files import VersionFolder
from functions.serving.tower import UserTower

_FILTER_CACHE_SIZE = 128
#: Arrays smaller than this stay in memory: mapping them saves nothing.
SPILL_MIN_BYTES = 1 << 20
_GATHER_CHUNK = 1 << 20


class IdIndex:
    """Where each string id sits in an array, without a dict of millions of entries: the ids' sort
    order and the ids in that order, searched with ``searchsorted`` (either may be memory-mapped)."""

    def __init__(self, order: npt.NDArray[np.int64], sorted_ids: npt.NDArray[np.str_]) -> None:
        if order.size != sorted_ids.size:
            raise ValueError("an id index needs one position per sorted id")
        self.order = order
        self.sorted_ids = sorted_ids

    @classmethod
    def of(
        cls,
        ids: npt.NDArray[np.str_],
        spill: Path | None = None,
        order: npt.NDArray[np.integer[Any]] | None = None,
    ) -> IdIndex:
        """The index of ``ids``: ``order`` is their sort order as exported (``lookup.npz``; checked, and
        sorted here instead if it is wrong or absent). With ``spill`` the sorted ids (and an order
        computed here) are written beside it and memory-mapped, a chunk at a time."""
        given = order is not None and order.shape == ids.shape and order.dtype.kind in "iu"
        positions = order if given and order is not None else np.argsort(ids, kind="stable").astype(np.int64)
        if spill is None or ids.nbytes < SPILL_MIN_BYTES:
            sorted_ids = ids[positions]
            if not _strictly_ascending(sorted_ids, None):
                return cls.of(ids) if given else cls(positions.astype(np.int64), sorted_ids)
            return cls(positions.astype(np.int64, copy=False), sorted_ids)
        sorted_path = spill.with_suffix(".sorted.npy")
        out = np.lib.format.open_memmap(sorted_path, mode="w+", dtype=ids.dtype, shape=ids.shape)
        ascending, last = True, None
        for start in range(0, ids.size, _GATHER_CHUNK):  # never a second full copy in memory
            chunk = ids[positions[start : start + _GATHER_CHUNK]]
            ascending = ascending and _strictly_ascending(chunk, last)
            out[start : start + chunk.size] = chunk
            last = chunk[-1]
        out.flush()
        del out
        if given and not ascending:
            logger.warning("lookup.npz has a wrong id order; sorting the ids instead")
            return cls.of(ids, spill)
        if not given:
            np.save(spill.with_suffix(".order.npy"), positions)
            positions = np.load(spill.with_suffix(".order.npy"), mmap_mode="r")
        return cls(positions, np.load(sorted_path, mmap_mode="r"))  # type: ignore[arg-type]

    def find(self, wanted: Sequence[str]) -> npt.NDArray[np.int64]:
        """Index of each wanted key in the original array, -1 where absent."""
        if not wanted or self.sorted_ids.size == 0:
            return np.full(len(wanted), -1, dtype=np.int64)
        query = np.asarray(list(wanted), dtype=np.str_)
        pos = np.searchsorted(self.sorted_ids, query)
        pos = np.minimum(pos, self.sorted_ids.size - 1)
        hit = self.sorted_ids[pos] == query
        return np.where(hit, np.asarray(self.order[pos], dtype=np.int64), -1)


def _strictly_ascending(chunk: npt.NDArray[np.str_], before: np.str_ | None) -> bool:
    if chunk.size and before is not None and not chunk[0] > before:
        return False
    return bool(np.all(chunk[1:] > chunk[:-1]))


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
        ids: IdIndex | None = None,
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
        self.ids = ids if ids is not None else IdIndex.of(item_ids)
        names = np.unique(np.concatenate([categories, np.asarray(list(extra_categories), dtype=np.str_)]))
        self.category_names: tuple[str, ...] = tuple(str(name) for name in names)
        self.category_codes = np.searchsorted(names, categories).astype(np.int32)

    @property
    def size(self) -> int:
        """Number of items."""
        return int(self.item_ids.size)

    def index_of(self, item_id: str) -> int:
        """The item's index, or -1."""
        return int(self.ids.find([item_id])[0])

    def lookup(self, item_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """The index of each id, -1 for ids the model does not know (aligned with ``item_ids``)."""
        return self.ids.find(list(item_ids))

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
        ids: IdIndex | None = None,
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
        self.ids = ids if ids is not None else IdIndex.of(user_ids)

    @property
    def size(self) -> int:
        """Number of known users."""
        return int(self.user_ids.size)

    def user_index(self, user_id: str) -> int:
        """The user's index in the trained model, or -1 for a user the model has not seen."""
        return int(self.ids.find([user_id])[0])

    def history(self, user_index: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """A known user's training interactions: item indices and type codes, most recent first."""
        if user_index < 0:
            return np.empty(0, np.int64), np.empty(0, np.int8)
        start, stop = int(self.indptr[user_index]), int(self.indptr[user_index + 1])
        return np.asarray(self.items[start:stop], dtype=np.int64), np.array(self.types[start:stop])


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
    # The version's local files (memory-mapped by the arrays above); None for a bundle built in memory.
    folder: VersionFolder | None = None
    _filters: OrderedDict[tuple[Hashable, ...], AllowedSet] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def released(self) -> bool:
        """Whether the version was let go (replaced or evicted); requests in flight may still use it."""
        return self.folder is not None and self.folder.released

    def footprint_bytes(self) -> int:
        """What the version may keep resident: its local files (mapped or loaded whole)."""
        return self.folder.size_bytes() if self.folder is not None else 0

    def release(self) -> None:
        """Remove the version's local files; its memory goes when the last request drops it."""
        if self.folder is not None:
            self.folder.release()

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
