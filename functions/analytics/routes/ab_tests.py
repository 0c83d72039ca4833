"""A/B tests of model versions (walkthrough Step 6.2): create, list, read, stop, and results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from functions.analytics.ab_tests import ab_test_results, create_ab_test
from functions.analytics.dependencies import AbTests, Counters
from functions.analytics.domain import Variant
from functions.analytics.schemas import (
    AbTestCreate,
    AbTestList,
    AbTestOut,
    AbTestResultsOut,
    LiftOut,
    VariantResultOut,
)
from functions.http.dependencies import ClockDep
from functions.http.principal import Reader, TenantAdmin
from functions.training.dependencies import Models

router = APIRouter(prefix="/api/admin/ab-tests", tags=["ab-tests"])
TestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^ab_[A-Za-z0-9]+$")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AbTestOut)
def post_ab_test(
    body: AbTestCreate, principal: TenantAdmin, now: ClockDep, tests: AbTests, registry: Models
) -> AbTestOut:
    """Start a test now; users are split by a deterministic hash. One running test per tenant."""
    test = create_ab_test(
        tests,
        registry,
        principal.tenant_id,
        name=body.name,
        variants=[Variant(id=v.id, model_version=v.model_version, traffic=v.traffic) for v in body.variants],
        metric=body.metric,
        duration_days=body.duration_days,
        now=now,
    )
    return AbTestOut.of(test, now)


@router.get("", response_model=AbTestList)
def get_ab_tests(principal: Reader, now: ClockDep, tests: AbTests) -> AbTestList:
    """The tenant's tests, newest first."""
    return AbTestList(ab_tests=[AbTestOut.of(test, now) for test in tests.list_tests(principal.tenant_id)])


@router.get("/{test_id}", response_model=AbTestOut)
def get_ab_test(test_id: TestId, principal: Reader, now: ClockDep, tests: AbTests) -> AbTestOut:
    """One test of the tenant."""
    return AbTestOut.of(tests.get(principal.tenant_id, test_id), now)


@router.post("/{test_id}/stop", response_model=AbTestOut)
def post_stop(test_id: TestId, principal: TenantAdmin, now: ClockDep, tests: AbTests) -> AbTestOut:
    """Stop assigning users (idempotent); serving returns to the active model within seconds."""
    return AbTestOut.of(tests.stop(principal.tenant_id, test_id, now), now)


@router.get("/{test_id}/results", response_model=AbTestResultsOut)
def get_results(
    test_id: TestId, principal: Reader, now: ClockDep, tests: AbTests, counters: Counters
) -> AbTestResultsOut:
    """Per-variant impressions, clicks, conversions, rates and revenue; lift vs control with its test."""
    results = ab_test_results(tests, counters, principal.tenant_id, test_id, now=now)
    metric = results.test.metric
    return AbTestResultsOut(
        test=AbTestOut.of(results.test, now),
        alpha=results.alpha,
        variants=[
            VariantResultOut(
                id=r.variant.id,
                model_version=r.variant.model_version,
                traffic=r.variant.traffic,
                impressions=r.totals.impressions,
                recommendation_requests=r.totals.responses,
                clicks=r.totals.clicks,
                conversions=r.totals.conversions,
                click_through_rate=r.totals.click_through_rate,
                conversion_rate=r.totals.conversion_rate,
                revenue=round(r.totals.revenue, 2),
                revenue_per_impression=r.totals.revenue_per_impression,
                lift=LiftOut.of(metric, r.comparison) if r.comparison is not None else None,
            )
            for r in results.variants
        ],
        winner=results.winner,
    )
