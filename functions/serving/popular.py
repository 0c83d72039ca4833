"""Popular-item lists (``popular.json``, docs/artifacts.md) and the popular fallback's ranking."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.popular import PopularDocument
from contract.popular import PopularEntry as PopularDocumentEntry
from functions.serving.domain import ScoredItem
from functions.serving.filters import ItemFilters, passing


@dataclass(frozen=True)
class PopularEntry:
    """One item of a popular list."""

    item_id: str
    score: float
    title: str
    category: str
    brand: str
    price: float | None


@dataclass(frozen=True)
class PopularLists:
    """``{"overall": [...], "by_category": {category: [...]}}``, best first."""

    overall: tuple[PopularEntry, ...] = ()
    by_category: Mapping[str, tuple[PopularEntry, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any) -> PopularLists:
        """Read the JSON document (``contract.popular``); ``ValueError`` if it does not have its shape."""
        document = PopularDocument.model_validate(data)
        return cls(
            overall=_entries(document.overall),
            by_category={name: _entries(entries) for name, entries in document.by_category.items()},
        )

    @property
    def is_empty(self) -> bool:
        """No list has an item."""
        return not self.overall and not any(self.by_category.values())

    def categories(self) -> frozenset[str]:
        """The categories these lists know (their keys and their entries' categories)."""
        names = set(self.by_category)
        names.update(entry.category for entry in self.overall)
        return frozenset(name for name in names if name)

    def candidates(self, categories: Iterable[str]) -> list[PopularEntry]:
        """The list for the requested categories (merged by score), or the overall list; no repeats."""
        wanted = tuple(categories)
        if not wanted:
            pool: list[PopularEntry] = list(self.overall)
        else:
            pool = [entry for name in wanted for entry in self.by_category.get(name, ())]
            pool.sort(key=lambda entry: entry.score, reverse=True)
        seen: set[str] = set()
        unique: list[PopularEntry] = []
        for entry in pool:
            if entry.item_id not in seen:
                seen.add(entry.item_id)
                unique.append(entry)
        return unique


def popular_reason(category: str) -> str:
    """The reason shown for an item chosen by popularity."""
    return f"Popular in {category}" if category else "Popular right now"


def rank_popular(
    lists: PopularLists, filters: ItemFilters, *, excluded: frozenset[str], count: int
) -> list[ScoredItem]:
    """The best ``count`` popular items that pass the filters and are not excluded (no model needed)."""
    chosen = passing(filters, lists.candidates(filters.categories), excluded=excluded, limit=count)
    return [
        ScoredItem(
            item_id=entry.item_id,
            title=entry.title,
            score=round(entry.score, 6),
            category=entry.category,
            price=entry.price,
            reason=popular_reason(entry.category),
        )
        for entry in chosen
    ]


def _entries(entries: list[PopularDocumentEntry]) -> tuple[PopularEntry, ...]:
    return tuple(
        PopularEntry(entry.item_id, entry.score, entry.title, entry.category, entry.brand, entry.price)
        for entry in entries
    )
