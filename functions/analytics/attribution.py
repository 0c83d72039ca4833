"""Attribution: which stored interactions did recommendations earn, counted per day, item and variant.

Ingestion calls ``InteractionAttribution`` once per upload with the rows it has just stored: only
fresh rows (retried event ids were dropped before storage), so a retried event is never counted twice.

A row counts when it is a ``click`` or a ``purchase`` and either its ``source`` is
``recommendations`` (the walkthrough's Step 3.3) or it carries the ``recommendation_id`` of a
response serving recorded (and the item was in that response). Purchases add their ``revenue``.
The row's A/B variant is the one its recommendation was served under; without a recommendation
record, it is the variant that deterministic assignment gives the user in the test that ran at the
row's timestamp, which is the variant serving showed that user. Counters go to the row's own day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from functions.analytics import keys, telemetry
from functions.analytics.assignment import assign
from functions.analytics.domain import AbTest, CounterDelta, RecommendationRecord
from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters

RECOMMENDATIONS_SOURCE = "recommendations"
_COUNTED: dict[str, keys.Counter] = {"click": "clicks", "purchase": "conversions"}
_COLUMNS = ("user_id", "item_id", "interaction_type", "timestamp", "source", "revenue", "recommendation_id")


@dataclass
class AttributionPlan:
    """The counter increments of one batch, and what they add up to."""

    deltas: dict[str, CounterDelta] = field(default_factory=dict)
    attributed: int = 0
    clicks: int = 0
    purchases: int = 0
    revenue: Decimal = Decimal(0)

    def add(self, key: str, attribute: str, value: Decimal | int) -> None:
        """Increase one attribute of one row."""
        self.deltas.setdefault(key, CounterDelta()).add(attribute, value)


@dataclass(frozen=True)
class AttributionResult:
    """What one batch added (``writes``: UpdateItem calls made)."""

    stored: int
    attributed: int
    clicks: int
    purchases: int
    revenue: float
    writes: int


class InteractionAttribution:
    """The ingestion hook: ``hook(tenant_id, fresh_rows, now, stored=n)`` after the rows are stored."""

    def __init__(self, counters: AnalyticsCounters, tests: AbTestRepository) -> None:
        self._counters = counters
        self._tests = tests

    def __call__(self, tenant_id: str, fresh_rows: pa.Table, now: datetime, *, stored: int) -> None:
        """Attribute the batch and emit its metrics; ``ServiceUnavailableError`` leaves no counter changed.

        ``fresh_rows`` may be only the rows that name a source or a recommendation (no other row can
        be attributed); ``stored`` counts every fresh row of the upload.
        """
        result = attribute_interactions(self._counters, self._tests, tenant_id, fresh_rows, now)
        telemetry.interactions_attributed(
            stored=stored,
            attributed=result.attributed,
            clicks=result.clicks,
            purchases=result.purchases,
            revenue=result.revenue,
        )


def attribute_interactions(
    counters: AnalyticsCounters, tests: AbTestRepository, tenant_id: str, fresh_rows: pa.Table, now: datetime
) -> AttributionResult:
    """Count a batch's attributable rows (``ADD`` on the day, item and variant counters)."""
    rows = candidate_rows(fresh_rows)
    wanted = {row["recommendation_id"] for row in rows if row["recommendation_id"]}
    records = counters.recommendations(tenant_id, wanted, now) if wanted else {}
    needs_tests = any(row["recommendation_id"] not in records and _from_source(row["source"]) for row in rows)
    running = tests.list_tests(tenant_id) if needs_tests else []
    plan = plan_attribution(tenant_id, rows, records, running)
    writes = counters.apply(tenant_id, plan.deltas) if plan.deltas else 0
    return AttributionResult(
        stored=fresh_rows.num_rows,
        attributed=plan.attributed,
        clicks=plan.clicks,
        purchases=plan.purchases,
        revenue=float(plan.revenue),
        writes=writes,
    )


def candidate_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Clicks and purchases that claim to come from recommendations (by source or recommendation id)."""
    if table.num_rows == 0:
        return []
    source = pc.fill_null(pc.equal(pc.utf8_lower(table.column("source")), RECOMMENDATIONS_SOURCE), False)
    claims = pc.or_(source, pc.is_valid(table.column("recommendation_id")))
    counted = pc.is_in(table.column("interaction_type"), value_set=pa.array(sorted(_COUNTED)))
    rows: list[dict[str, Any]] = table.filter(pc.and_(claims, counted)).select(list(_COLUMNS)).to_pylist()
    return rows


def plan_attribution(
    tenant_id: str,
    rows: Iterable[Mapping[str, Any]],
    records: Mapping[str, RecommendationRecord],
    tests: Sequence[AbTest],
) -> AttributionPlan:
    """The counter increments of ``rows`` (pure: no I/O)."""
    plan = AttributionPlan()
    for row in rows:
        record = records.get(row["recommendation_id"]) if row["recommendation_id"] else None
        in_record = record is not None and row["item_id"] in record.items
        if not (_from_source(row["source"]) or in_record):
            continue
        counter = _COUNTED[row["interaction_type"]]
        purchase = counter == "conversions"
        revenue = _money(row["revenue"]) if purchase else Decimal(0)
        day = keys.day_of(row["timestamp"])
        day_row = keys.day_key(day, keys.day_shard(row["item_id"]))
        for key in (day_row, keys.item_key(day, row["item_id"])):
            plan.add(key, counter, 1)
            plan.add(key, "revenue", revenue)
        variant = _variant(tenant_id, row, record, tests)
        if variant is not None:
            test_id, variant_id = variant
            plan.add(day_row, keys.variant_attribute(test_id, variant_id, counter), 1)
            plan.add(day_row, keys.variant_attribute(test_id, variant_id, "revenue"), revenue)
            plan.add(day_row, keys.variant_attribute(test_id, variant_id, "revenue_sq"), revenue * revenue)
        plan.attributed += 1
        plan.clicks += 0 if purchase else 1
        plan.purchases += 1 if purchase else 0
        plan.revenue += revenue
    return plan


def _variant(
    tenant_id: str,
    row: Mapping[str, Any],
    record: RecommendationRecord | None,
    tests: Sequence[AbTest],
) -> tuple[str, str] | None:
    if record is not None:
        return (record.test_id, record.variant) if record.test_id and record.variant else None
    moment: datetime = row["timestamp"]
    for test in tests:
        if test.started_at <= moment < test.finished_at():
            return test.test_id, assign(test, tenant_id, row["user_id"]).variant
    return None


def _from_source(source: str | None) -> bool:
    return source is not None and source.strip().lower() == RECOMMENDATIONS_SOURCE


def _money(value: float | None) -> Decimal:
    """Revenue as an exact decimal (``repr`` of a float is its shortest exact spelling)."""
    return Decimal(repr(value)) if value else Decimal(0)
