"""Item filters: each declared once, here, and applied by every ranking path through the same code.

A filter has two parts: its request field (``functions.serving.schemas.Filters``, mapped onto
``ItemFilters``) and its declaration here — its ``ItemFilters`` field and how it judges items from the
catalogue columns of an ``ItemTable``. Nothing else names a filter; two tables are judged:

- the model's item table (``functions.serving.bundle.ItemCatalog``): the model, cold-user and
  similar-items paths search under a bitmap of it (``ModelBundle.allowed``: the row filters' mask,
  cached per combination, less the excluded rows of the request);
- a list of entries (``EntryTable``): the popular lists without a model, by category or overall, and
  the newcomers that fill up short answers (``passing``).

A ``RowFilter`` judges each row from its columns (a vectorised mask); an ``IdFilter`` names items to
leave out, looked up per request (ids change with every request, so they stay out of cached bitmaps).
Availability is no request filter: every mask starts from the table's ``available`` column, so no
filter lets an unavailable item through (popular lists and newcomers hold available items only: they
are rebased on the current catalogue, ``functions.serving.catalog``).

Adding a filter: a field on ``Filters`` and its line in ``Filters.to_domain``, a field on
``ItemFilters``, a ``RowFilter`` or ``IdFilter`` subclass here listed in ``FILTERS``, and its example in
``tests/unit/serving/test_filters.py`` (which checks every ranking path against every declared filter).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from functions.common.errors import InvalidInputError

BoolArray = npt.NDArray[np.bool_]
_MAX_LISTED_CATEGORIES = 20
_FIRST_CHUNK = 32  # entries judged at once by ``passing`` when it needs only a few


@dataclass(frozen=True)
class ItemFilters:
    """What every returned item must satisfy (an empty or None field asks for nothing)."""

    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    exclude_ids: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        """No constraint at all."""
        return all(declared.key(self) is None for declared in FILTERS)

    def cache_key(self) -> tuple[Hashable, ...]:
        """A hashable, order-independent form (for the response cache)."""
        return tuple(declared.key(self) for declared in FILTERS)

    def price_ok(self, price: float | None) -> bool:
        """Whether ``price`` is inside the range (an item without a price fails any price bound)."""
        value = np.array([np.nan if price is None else price], dtype=np.float64)
        return bool(price_in_range(value, self.min_price, self.max_price)[0])


class ItemTable(Protocol):
    """Catalogue columns in row order, and each id's row."""

    @property
    def categories(self) -> npt.NDArray[np.str_]:
        """Each row's category."""

    @property
    def category_names(self) -> tuple[str, ...]:
        """The table's categories, sorted (``category_codes`` index into them)."""

    @property
    def category_codes(self) -> npt.NDArray[np.int32]:
        """Each row's category as an index into ``category_names``."""

    @property
    def brands(self) -> npt.NDArray[np.str_]:
        """Each row's brand."""

    @property
    def prices(self) -> npt.NDArray[np.float64]:
        """Each row's price (NaN: unknown)."""

    @property
    def available(self) -> BoolArray:
        """Whether each row can be served at all."""

    def lookup(self, item_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each id's row, -1 for ids not in the table."""


class RowFilter(ABC):
    """A filter that judges each item from its catalogue columns."""

    name: str

    @abstractmethod
    def key(self, filters: ItemFilters) -> Hashable | None:
        """What this filter asks for, hashable and order-independent; None when it asks for nothing."""

    @abstractmethod
    def keep(self, filters: ItemFilters, table: ItemTable) -> BoolArray:
        """The rows of ``table`` that pass (called only when ``key`` is not None)."""


class IdFilter(ABC):
    """A filter that names the items to leave out."""

    name: str

    @abstractmethod
    def ids(self, filters: ItemFilters) -> frozenset[str]:
        """The ids this filter leaves out."""

    def key(self, filters: ItemFilters) -> Hashable | None:
        """The ids, sorted; None when there are none."""
        ids = self.ids(filters)
        return tuple(sorted(ids)) if ids else None


class CategoryFilter(RowFilter):
    """``category``: items in any of the named categories (resolved to the shop's spelling first)."""

    name = "category"

    def key(self, filters: ItemFilters) -> Hashable | None:
        return tuple(sorted(filters.categories)) or None

    def keep(self, filters: ItemFilters, table: ItemTable) -> BoolArray:
        code_of = {name: code for code, name in enumerate(table.category_names)}
        wanted = np.zeros(len(code_of), dtype=bool)
        wanted[[code_of[name] for name in filters.categories if name in code_of]] = True
        return wanted[table.category_codes]


class PriceFilter(RowFilter):
    """``min_price`` / ``max_price``: items priced inside the range (bounds included)."""

    name = "price"

    def key(self, filters: ItemFilters) -> Hashable | None:
        if filters.min_price is None and filters.max_price is None:
            return None
        return (filters.min_price, filters.max_price)

    def keep(self, filters: ItemFilters, table: ItemTable) -> BoolArray:
        return price_in_range(table.prices, filters.min_price, filters.max_price)


class ExcludedIdsFilter(IdFilter):
    """``exclude_ids``: never these items."""

    name = "exclude_ids"

    def ids(self, filters: ItemFilters) -> frozenset[str]:
        return filters.exclude_ids


#: Every filter a request can ask for; every ranking path applies each of them.
FILTERS: tuple[RowFilter | IdFilter, ...] = (CategoryFilter(), PriceFilter(), ExcludedIdsFilter())
_ROW_FILTERS = tuple(declared for declared in FILTERS if isinstance(declared, RowFilter))
_ID_FILTERS = tuple(declared for declared in FILTERS if isinstance(declared, IdFilter))


def price_in_range(
    prices: npt.NDArray[np.float64], min_price: float | None, max_price: float | None
) -> BoolArray:
    """Which prices lie inside the range; an unknown price (NaN) fails any bound."""
    inside = np.ones(prices.shape, dtype=bool)
    if min_price is not None:
        inside &= prices >= min_price
    if max_price is not None:
        inside &= prices <= max_price
    return inside


def row_key(filters: ItemFilters) -> tuple[Hashable, ...]:
    """What the row filters ask for: requests with equal keys share a bitmap."""
    return tuple(declared.key(filters) for declared in _ROW_FILTERS)


def row_mask(filters: ItemFilters, table: ItemTable) -> BoolArray:
    """The available rows that pass every row filter (the id filters are not applied here)."""
    mask = np.array(table.available, dtype=bool, copy=True)
    for declared in _ROW_FILTERS:
        if declared.key(filters) is not None:
            mask &= declared.keep(filters, table)
    return mask


def excluded_rows(filters: ItemFilters, table: ItemTable) -> npt.NDArray[np.int64]:
    """The rows of ``table`` the id filters leave out (ids not in the table are ignored)."""
    ids: set[str] = set()
    for declared in _ID_FILTERS:
        ids.update(declared.ids(filters))
    return _rows(table, ids)


class Entry(Protocol):
    """An item as popular lists and newcomers carry it (``functions.serving.popular.PopularEntry``)."""

    @property
    def item_id(self) -> str:
        """The item's id."""

    @property
    def category(self) -> str:
        """The item's category."""

    @property
    def brand(self) -> str:
        """The item's brand."""

    @property
    def price(self) -> float | None:
        """The item's price, None when unknown."""


E = TypeVar("E", bound=Entry)


class EntryTable:
    """A list of entries as an ``ItemTable`` (every entry available; columns built when first asked)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self._entries = entries

    @cached_property
    def categories(self) -> npt.NDArray[np.str_]:
        return np.asarray([entry.category for entry in self._entries], dtype=np.str_)

    @cached_property
    def _category_index(self) -> tuple[tuple[str, ...], npt.NDArray[np.int32]]:
        names = sorted({entry.category for entry in self._entries})
        code_of = {name: code for code, name in enumerate(names)}
        codes = np.fromiter(
            (code_of[entry.category] for entry in self._entries), np.int32, len(self._entries)
        )
        return tuple(names), codes

    @property
    def category_names(self) -> tuple[str, ...]:
        return self._category_index[0]

    @property
    def category_codes(self) -> npt.NDArray[np.int32]:
        return self._category_index[1]

    @cached_property
    def brands(self) -> npt.NDArray[np.str_]:
        return np.asarray([entry.brand for entry in self._entries], dtype=np.str_)

    @cached_property
    def prices(self) -> npt.NDArray[np.float64]:
        return np.asarray(
            [np.nan if entry.price is None else entry.price for entry in self._entries], dtype=np.float64
        )

    @cached_property
    def available(self) -> BoolArray:
        return np.ones(len(self._entries), dtype=bool)

    @cached_property
    def _row_of(self) -> dict[str, int]:
        rows: dict[str, int] = {}
        for row, entry in enumerate(self._entries):
            rows.setdefault(entry.item_id, row)
        return rows

    def lookup(self, item_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        return np.asarray([self._row_of.get(item_id, -1) for item_id in item_ids], dtype=np.int64)


def passing(
    filters: ItemFilters, entries: Sequence[E], *, excluded: Collection[str] = (), limit: int | None = None
) -> list[E]:
    """The entries that pass every filter and are not in ``excluded``, in their order (the first
    ``limit`` of them: the list is judged in growing chunks, so a long list is not read to its end)."""
    chosen: list[E] = []
    start, size = 0, len(entries) if limit is None else max(_FIRST_CHUNK, 2 * limit)
    while start < len(entries) and (limit is None or len(chosen) < limit):
        chunk = entries[start : start + size]
        table = EntryTable(chunk)
        mask = row_mask(filters, table)
        mask[excluded_rows(filters, table)] = False
        mask[_rows(table, excluded)] = False
        chosen.extend(entry for entry, ok in zip(chunk, mask.tolist(), strict=True) if ok)
        start, size = start + size, 2 * size
    return chosen if limit is None else chosen[:limit]


def resolve_categories(filters: ItemFilters, known: Sequence[str]) -> ItemFilters:
    """The filters with each category in the shop's spelling (matched case-insensitively);
    ``InvalidInputError`` naming the unknown ones and the known ones."""
    if not filters.categories:
        return filters
    canonical: dict[str, str] = {}
    for name in sorted(known):
        canonical.setdefault(name.casefold(), name)
    resolved: list[str] = []
    unknown: list[str] = []
    for name in filters.categories:
        match = canonical.get(name.casefold())
        if match is None:
            unknown.append(name)
        elif match not in resolved:
            resolved.append(match)
    if unknown:
        listed = ", ".join(sorted(known)[:_MAX_LISTED_CATEGORIES])
        more = len(known) - _MAX_LISTED_CATEGORIES
        names = ", ".join(repr(name) for name in unknown)
        raise InvalidInputError(
            f"unknown category {names}; this shop's categories are: {listed}"
            + (f" and {more} more" if more > 0 else "")
        )
    return replace(filters, categories=tuple(resolved))


def _rows(table: ItemTable, ids: Collection[str]) -> npt.NDArray[np.int64]:
    if not ids:
        return np.empty(0, dtype=np.int64)
    rows = table.lookup(sorted(ids))
    return rows[rows >= 0]
