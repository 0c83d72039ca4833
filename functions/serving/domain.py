"""Domain types of the serving function: what logic takes and returns (routes map them to HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from functions.serving.filters import ItemFilters

#: ``algorithm`` of a response that comes from popularity rather than a model.
POPULAR = "popular"


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
