"""Domain models of analytics and A/B tests (request/response models live with the routes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Metric = Literal["conversion_rate", "click_through_rate", "revenue_per_impression"]
TestStatus = Literal["running", "stopped", "completed"]
CONTROL_ID = "control"


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B test: the model it serves and its share of users (percent)."""

    id: str
    model_version: str
    traffic: int


@dataclass(frozen=True)
class AbTest:
    """An A/B test. ``stopped`` is stored; ``completed`` is a running test whose duration has passed."""

    test_id: str
    name: str
    variants: tuple[Variant, ...]
    metric: Metric
    duration_days: int
    started_at: datetime
    ends_at: datetime
    created_at: datetime
    stopped_at: datetime | None = None

    @property
    def control(self) -> Variant:
        """The baseline: the variant called ``control``, else the first one."""
        return next((v for v in self.variants if v.id == CONTROL_ID), self.variants[0])

    def status_at(self, now: datetime) -> TestStatus:
        """Whether the test runs at ``now``."""
        if self.stopped_at is not None:
            return "stopped"
        return "running" if now < self.ends_at else "completed"

    def is_running(self, now: datetime) -> bool:
        """Whether users are being assigned at ``now``."""
        return self.stopped_at is None and self.started_at <= now < self.ends_at

    def finished_at(self) -> datetime:
        """When assignment ended or will end."""
        return self.stopped_at if self.stopped_at is not None else self.ends_at


@dataclass(frozen=True)
class Assignment:
    """The variant a user sees while a test runs (what serving needs to pick the model)."""

    test_id: str
    variant: str
    model_version: str


@dataclass
class Totals:
    """Summed counters. Rates are per impression; a rate over zero impressions is 0, never an error."""

    responses: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0

    def add(self, counter: str, value: float) -> None:
        """Add ``value`` to the counter called ``counter`` (unknown names are ignored)."""
        if counter in ("revenue", "revenue_sq"):
            setattr(self, counter, getattr(self, counter) + float(value))
        elif counter in ("responses", "impressions", "clicks", "conversions"):
            setattr(self, counter, getattr(self, counter) + int(value))

    def merge(self, other: Totals) -> None:
        """Add every counter of ``other``."""
        for name in ("responses", "impressions", "clicks", "conversions", "revenue", "revenue_sq"):
            self.add(name, getattr(other, name))

    @classmethod
    def of(cls, counters: dict[str, float]) -> Totals:
        """Totals from a row's counters (other attributes are ignored)."""
        totals = cls()
        for name, value in counters.items():
            totals.add(name, value)
        return totals

    @property
    def click_through_rate(self) -> float:
        """Clicks per impression."""
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def conversion_rate(self) -> float:
        """Purchases per impression (the A/B metric ``conversion_rate``)."""
        return self.conversions / self.impressions if self.impressions else 0.0

    @property
    def revenue_per_impression(self) -> float:
        """Attributed revenue per impression."""
        return self.revenue / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class RecommendationRecord:
    """What serving remembered about one response, for attribution."""

    recommendation_id: str
    day: str
    items: frozenset[str]
    variant: str | None = None
    test_id: str | None = None
    expires_at: int = 0


@dataclass
class CounterDelta:
    """Increments for one row: plain counters and, on day rows, per-variant attributes."""

    counters: dict[str, Decimal] = field(default_factory=dict)

    def add(self, attribute: str, value: Decimal | int) -> None:
        """Increase ``attribute`` by ``value`` (exact decimal arithmetic: revenue is money)."""
        self.counters[attribute] = self.counters.get(attribute, Decimal(0)) + Decimal(value)

    def negated(self) -> CounterDelta:
        """The delta that undoes this one."""
        return CounterDelta({name: -value for name, value in self.counters.items()})
