"""Analytics reports: the summary (Step 5.1) and the top recommended products (Step 6.3).

Rates are per impression (an impression is one item shown in one response): click-through rate is
clicks / impressions, conversion rate is purchases / impressions. A tenant without data gets zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from functions.analytics import keys
from functions.analytics.domain import Totals
from functions.analytics.store.counters import AnalyticsCounters
from functions.common.errors import InvalidInputError
from functions.ingestion.store.data_store import DataStore

MAX_DAYS = 365
MAX_TOP_PRODUCTS = 100


@dataclass(frozen=True)
class DayTotals:
    """One day's totals."""

    day: str
    totals: Totals


@dataclass(frozen=True)
class Summary:
    """The tenant's recommendation performance over a window of days."""

    start: str
    end: str
    days: int
    totals: Totals
    daily: list[DayTotals]


@dataclass(frozen=True)
class ProductStats:
    """One item's recommendation performance over a window of days."""

    item_id: str
    title: str | None
    totals: Totals


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"days must be between 1 and {MAX_DAYS}, got {days}")


def analytics_summary(counters: AnalyticsCounters, tenant_id: str, *, days: int, now: datetime) -> Summary:
    """Totals of the last ``days`` days (today included) and of each day, zeros where nothing happened."""
    _check_days(days)
    window = keys.window(now.date(), days)
    by_day = {day: Totals() for day in window}
    for row in counters.rows(tenant_id, *keys.day_range(window[0], window[-1])):
        day = keys.day_of_key(row.key)
        if day in by_day:
            by_day[day].merge(Totals.of(row.counters))  # a day's shards add up
    overall = Totals()
    for totals in by_day.values():
        overall.merge(totals)
    return Summary(
        start=window[0],
        end=window[-1],
        days=days,
        totals=overall,
        daily=[DayTotals(day, totals) for day, totals in by_day.items()],
    )


def top_products(
    counters: AnalyticsCounters,
    store: DataStore,
    tenant_id: str,
    *,
    days: int,
    limit: int,
    now: datetime,
) -> list[ProductStats]:
    """The most recommended items of the window (ties: more clicks, more purchases, then item id)."""
    _check_days(days)
    if not 1 <= limit <= MAX_TOP_PRODUCTS:
        raise InvalidInputError(f"limit must be between 1 and {MAX_TOP_PRODUCTS}, got {limit}")
    window = keys.window(now.date(), days)
    per_item: dict[str, Totals] = {}
    for row in counters.rows(tenant_id, *keys.item_range(window[0], window[-1])):
        _day, item_id = keys.item_of_key(row.key)
        per_item.setdefault(item_id, Totals()).merge(Totals.of(row.counters))
    ranked = sorted(
        per_item.items(),
        key=lambda pair: (-pair[1].impressions, -pair[1].clicks, -pair[1].conversions, pair[0]),
    )[:limit]
    titles = _titles(store, tenant_id, [item_id for item_id, _totals in ranked])
    return [ProductStats(item_id, titles.get(item_id), totals) for item_id, totals in ranked]


def _titles(store: DataStore, tenant_id: str, item_ids: list[str]) -> dict[str, str]:
    """Titles of ``item_ids`` from the tenant's catalogue (items no longer in it have none)."""
    if not item_ids:
        return {}
    catalog = store.read_catalog(tenant_id).table
    if catalog is None:
        return {}
    wanted = catalog.filter(pc.is_in(catalog.column("item_id"), value_set=pa.array(item_ids)))
    return {row["item_id"]: row["title"] for row in wanted.select(["item_id", "title"]).to_pylist()}
