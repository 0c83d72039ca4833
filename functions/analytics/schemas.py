"""Request and response models of the analytics routes: A/B tests and their results, the reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from functions.analytics.domain import AbTest, Metric, TestStatus, Totals
from functions.analytics.statistics import Comparison
from functions.common.request_models import StrictRequestModel

MAX_VARIANTS = 10
MAX_DURATION_DAYS = 90


class VariantIn(StrictRequestModel):
    """One arm: an id, a model version of the tenant, and its share of users in percent."""

    id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["control"])]
    model_version: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["lightgcn_v1"])
    ]
    traffic: Annotated[int, Field(ge=1, le=100, examples=[50])]


class AbTestCreate(StrictRequestModel):
    """``POST /api/admin/ab-tests`` (the walkthrough's body)."""

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


class Figures(BaseModel):
    """Counters and rates of a period. Rates are per impression (one item shown in one response)."""

    recommendations_served: int
    recommendation_requests: int
    clicks: int
    conversions: int
    click_through_rate: float
    conversion_rate: float
    revenue: float

    @classmethod
    def of(cls, totals: Totals) -> Figures:
        """The figures of summed counters."""
        return cls(
            recommendations_served=totals.impressions,
            recommendation_requests=totals.responses,
            clicks=totals.clicks,
            conversions=totals.conversions,
            click_through_rate=round(totals.click_through_rate, 6),
            conversion_rate=round(totals.conversion_rate, 6),
            revenue=round(totals.revenue, 2),
        )


class DayFigures(Figures):
    """One UTC day."""

    date: str


class SummaryOut(Figures):
    """``GET /api/v1/analytics/summary``: the window's totals and every day of it (oldest first)."""

    days: int
    start_date: str
    end_date: str
    daily: list[DayFigures]


class TopProduct(BaseModel):
    """One item of ``top_products`` (the walkthrough's shape)."""

    item_id: str
    title: str | None
    recommendation_count: int
    click_through_rate: float
    conversion_rate: float
    revenue: float


class TopProductsOut(BaseModel):
    """``GET /api/v1/analytics/top-products``."""

    top_products: list[TopProduct]
