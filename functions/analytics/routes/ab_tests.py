"""A/B tests of model versions (walkthrough Step 6.2): create, list, read, stop, and results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.analytics.ab_tests import ab_test_results, create_ab_test
from functions.analytics.dependencies import AbTests, Counters
from functions.analytics.domain import AbTest, Metric, TestStatus, Variant
from functions.analytics.statistics import Comparison
from functions.common.request_models import RequestModel
from functions.http.dependencies import ClockDep
from functions.http.principal import Reader, TenantAdmin
from functions.training.dependencies import Models

router = APIRouter(prefix="/api/admin/ab-tests", tags=["ab-tests"])
TestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^ab_[A-Za-z0-9]+$")]
MAX_VARIANTS = 10
MAX_DURATION_DAYS = 90


class VariantIn(RequestModel):
    """One arm: an id, a model version of the tenant, and its share of users in percent."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["control"])]
    model_version: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["lightgcn_v1"])
    ]
    traffic: Annotated[int, Field(ge=1, le=100, examples=[50])]


class AbTestCreate(RequestModel):
    """``POST /api/admin/ab-tests`` (the walkthrough's body)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200, examples=["LightGCN vs Two-Tower"])]
    variants: Annotated[list[VariantIn], Field(min_length=2, max_length=MAX_VARIANTS)]
    metric: Metric = "conversion_rate"
    duration_days: Annotated[int, Field(ge=1, le=MAX_DURATION_DAYS)] = 7

    @model_validator(mode="after")
    def _variants_consistent(self) -> AbTestCreate:
        ids = [variant.id for variant in self.variants]
        duplicates = sorted({vid for vid in ids if ids.count(vid) > 1})
        if duplicates:
            raise ValueError(f"variant ids must be unique; repeated: {', '.join(duplicates)}")
        total = sum(variant.traffic for variant in self.variants)
        if total != 100:
            raise ValueError(f"variant traffic must sum to 100, got {total}")
        return self


class VariantOut(BaseModel):
    """An arm as stored."""

    id: str
    model_version: str
    traffic: int


class AbTestOut(BaseModel):
    """A test. ``control`` is the variant called ``control``, else the first one."""

    id: str
    name: str
    status: TestStatus
    metric: Metric
    duration_days: int
    variants: list[VariantOut]
    control: str
    created_at: datetime
    started_at: datetime
    ends_at: datetime
    stopped_at: datetime | None = None

    @classmethod
    def of(cls, test: AbTest, now: datetime) -> AbTestOut:
        """The API view of a test at ``now``."""
        return cls(
            id=test.test_id,
            name=test.name,
            status=test.status_at(now),
            metric=test.metric,
            duration_days=test.duration_days,
            variants=[
                VariantOut(id=v.id, model_version=v.model_version, traffic=v.traffic) for v in test.variants
            ],
            control=test.control.id,
            created_at=test.created_at,
            started_at=test.started_at,
            ends_at=test.ends_at,
            stopped_at=test.stopped_at,
        )


class AbTestList(BaseModel):
    """``GET /api/admin/ab-tests``: newest first."""

    ab_tests: list[AbTestOut]


class LiftOut(BaseModel):
    """A treatment against the control on the test's metric (two-sided test)."""

    metric: Metric
    control_value: float
    value: float
    absolute_difference: float
    relative_lift: float | None
    confidence_level: float
    ci_low: float | None
    ci_high: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    z: float | None
    p_value: float | None
    significant: bool

    @classmethod
    def of(cls, metric: Metric, comparison: Comparison) -> LiftOut:
        """The API view of a comparison."""
        return cls(
            metric=metric,
            control_value=comparison.control_value,
            value=comparison.treatment_value,
            absolute_difference=comparison.absolute_difference,
            relative_lift=comparison.relative_lift,
            confidence_level=comparison.confidence_level,
            ci_low=comparison.ci_low,
            ci_high=comparison.ci_high,
            relative_ci_low=comparison.relative_ci_low,
            relative_ci_high=comparison.relative_ci_high,
            z=comparison.z,
            p_value=comparison.p_value,
            significant=comparison.significant,
        )


class VariantResultOut(BaseModel):
    """One arm's counters and rates; ``lift`` is null for the control."""

    id: str
    model_version: str
    traffic: int
    impressions: int
    recommendation_requests: int
    clicks: int
    conversions: int
    click_through_rate: float
    conversion_rate: float
    revenue: float
    revenue_per_impression: float
    lift: LiftOut | None


class AbTestResultsOut(BaseModel):
    """``GET /api/admin/ab-tests/{id}/results``. ``winner`` is set only when the difference is significant."""

    test: AbTestOut
    alpha: float
    variants: list[VariantResultOut]
    winner: str | None


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
