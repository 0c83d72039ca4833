"""Domain types of the serving function: what logic takes and returns (routes map them to HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: ``algorithm`` of a response that comes from popularity rather than a model.
POPULAR = "popular"


@dataclass(frozen=True)
class ItemFilters:
    """What every returned item must satisfy. ``categories`` empty means any category."""

    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    exclude_ids: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        """No constraint at all."""
        return (
            not self.categories and self.min_price is None and self.max_price is None and not self.exclude_ids
        )

    def cache_key(self) -> tuple[object, ...]:
        """A hashable, order-independent form (for the response cache)."""
        return (
            tuple(sorted(self.categories)),
            self.min_price,
            self.max_price,
            tuple(sorted(self.exclude_ids)),
        )

    def price_ok(self, price: float | None) -> bool:
        """Whether ``price`` is inside the range (an item without a price fails any price bound)."""
        if self.min_price is None and self.max_price is None:
            return True
        if price is None or price != price:  # NaN: unknown price
            return False
        if self.min_price is not None and price < self.min_price:
            return False
        return self.max_price is None or price <= self.max_price


@dataclass(frozen=True)
class RecommendationQuery:
    """``POST /api/v1/recommendations`` after parsing."""

    user_id: str
    count: int
    filters: ItemFilters = field(default_factory=ItemFilters)
    exclude_purchased: bool = True


@dataclass(frozen=True)
class UserEvent:
    """One of the user's real-time events (recent-events table), newest first when listed."""

    item_id: str
    interaction_type: str
    timestamp: datetime
    event_key: str


@dataclass(frozen=True)
class UserFeed:
    """A user's newest real-time events, and whether the user was erased (GDPR).

    An erased user's past is in no answer: whatever a model version learned of them is ignored, and
    only events sent after the erasure (``events``) personalise, as for a new shopper.
    """

    events: list[UserEvent]
    erased: bool = False


@dataclass(frozen=True)
class ScoredItem:
    """One recommended item with the reason it is shown."""

    item_id: str
    title: str
    score: float
    category: str
    price: float | None
    reason: str


@dataclass(frozen=True)
class Ranking:
    """What ranking produced (before cache and metadata)."""

    items: tuple[ScoredItem, ...]
    algorithm: str
    search_ms: float = 0.0  # time spent in the index search


@dataclass(frozen=True)
class Recommendations:
    """A response of the recommendation or similar-items logic."""

    items: tuple[ScoredItem, ...]
    model_version: str | None
    algorithm: str
    cache_hit: bool
    recommendation_id: str
    latency_ms: float
    ab_test: tuple[str, str] | None = None  # (test id, variant) when an A/B test chose the model


@dataclass(frozen=True)
class ModelHealth:
    """What ``GET /api/v1/health`` reports for the caller's tenant."""

    status: str
    model_loaded: bool
    model_version: str | None
    index_loaded: bool
    index_size: int
    cache_connected: bool
