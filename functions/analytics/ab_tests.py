"""A/B test logic: create (validated against the tenant's models), list, stop, and results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from functions.analytics import keys
from functions.analytics.domain import AbTest, Metric, Totals, Variant
from functions.analytics.statistics import (
    ALPHA,
    Comparison,
    comparison_alpha,
    mean_difference_test,
    pick_winner,
    two_proportion_test,
)
from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.common.errors import ConflictError, InvalidInputError, NotFoundError
from functions.common.ids import new_id
from functions.training.store.model_registry import ModelRegistry


@dataclass(frozen=True)
class VariantResult:
    """One variant's counters and, for a treatment, its comparison with the control."""

    variant: Variant
    totals: Totals
    comparison: Comparison | None


@dataclass(frozen=True)
class AbTestResults:
    """A test's results on its metric."""

    test: AbTest
    variants: list[VariantResult]
    alpha: float
    winner: str | None


def create_ab_test(
    tests: AbTestRepository,
    registry: ModelRegistry,
    tenant_id: str,
    *,
    name: str,
    variants: Sequence[Variant],
    metric: Metric,
    duration_days: int,
    now: datetime,
) -> AbTest:
    """Start a test now. Its variants must use model versions of this tenant; one test runs at a time."""
    for variant in variants:
        try:
            registry.get_version(tenant_id, variant.model_version)
        except NotFoundError as exc:
            raise InvalidInputError(
                f"variant '{variant.id}': model version '{variant.model_version}' does not exist "
                "for this tenant (see GET /api/v1/models)"
            ) from exc
    test = AbTest(
        test_id=new_id("ab"),
        name=name,
        variants=tuple(variants),
        metric=metric,
        duration_days=duration_days,
        started_at=now,
        ends_at=now + timedelta(days=duration_days),
        created_at=now,
    )
    try:
        tests.create(tenant_id, test, now)
    except ConflictError as exc:  # the overlap is a property of the request: 422, as for bad input
        raise InvalidInputError(exc.message) from exc
    return test


def ab_test_results(
    tests: AbTestRepository, counters: AnalyticsCounters, tenant_id: str, test_id: str, *, now: datetime
) -> AbTestResults:
    """Per-variant counters over the test's days, each treatment against the control, and the winner."""
    test = tests.get(tenant_id, test_id)
    per_variant = variant_totals(counters, tenant_id, test, now)
    control = test.control
    alpha = comparison_alpha(len(test.variants), ALPHA)
    comparisons = {
        variant.id: compare(test.metric, per_variant[control.id], per_variant[variant.id], alpha)
        for variant in test.variants
        if variant.id != control.id
    }
    return AbTestResults(
        test=test,
        variants=[
            VariantResult(variant, per_variant[variant.id], comparisons.get(variant.id))
            for variant in test.variants
        ],
        alpha=alpha,
        winner=pick_winner(control.id, comparisons),
    )


def variant_totals(
    counters: AnalyticsCounters, tenant_id: str, test: AbTest, now: datetime
) -> dict[str, Totals]:
    """Each variant's counters, summed over the day rows of the test's lifetime."""
    totals = {variant.id: Totals() for variant in test.variants}
    last = min(test.finished_at(), now)
    start, end = keys.day_of(test.started_at), keys.day_of(max(last, test.started_at))
    for row in counters.rows(tenant_id, *keys.day_range(start, end)):
        for attribute, value in row.counters.items():
            parsed = keys.parse_variant_attribute(attribute)
            if parsed is not None and parsed[0] == test.test_id and parsed[1] in totals:
                totals[parsed[1]].add(parsed[2], value)
    return totals


def compare(metric: Metric, control: Totals, treatment: Totals, alpha: float) -> Comparison:
    """The treatment against the control on the test's metric."""
    if metric == "revenue_per_impression":
        return mean_difference_test(
            control.revenue,
            control.revenue_sq,
            control.impressions,
            treatment.revenue,
            treatment.revenue_sq,
            treatment.impressions,
            alpha=alpha,
        )
    successes = "clicks" if metric == "click_through_rate" else "conversions"
    return two_proportion_test(
        getattr(control, successes),
        control.impressions,
        getattr(treatment, successes),
        treatment.impressions,
        alpha=alpha,
    )
