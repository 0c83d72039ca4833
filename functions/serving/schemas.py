"""Request and response models of the serving function (the walkthrough's Part 3 and Step 2.3 shapes)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from functions.common.request_models import RequestModel
from functions.identity.models import MAX_AMOUNT
from functions.serving.domain import (
    ModelHealth,
    RecommendationQuery,
    Recommendations,
    ScoredItem,
)
from functions.serving.filters import ItemFilters

#: The ingestion rule for ids (``functions.ingestion.schema.ID_PATTERN``, which imports pyarrow): 1-128
#: characters, a letter or digit first, then letters, digits and ``_ . : @ / -``.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"
MAX_COUNT = 100
MAX_EXCLUDED_IDS = 1000
MAX_CATEGORIES = 50

EntityId = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
Category = Annotated[str, Field(min_length=1, max_length=128)]
Price = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class _Request(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Each field is one filter declared in ``functions.serving.filters`` (which judges items by it).
class Filters(_Request):
    """``filters`` of a recommendation request; every returned item satisfies all of them."""

    category: Category | Annotated[list[Category], Field(min_length=1, max_length=MAX_CATEGORIES)] | None = (
        Field(default=None, examples=["Electronics", ["Laptops", "Tablets"]])
    )
    min_price: Price | None = Field(default=None, examples=[1000])
    max_price: Price | None = Field(default=None, examples=[2000])
    exclude_ids: Annotated[list[EntityId], Field(max_length=MAX_EXCLUDED_IDS)] = Field(
        default_factory=list, examples=[["item_0001", "item_0003"]]
    )

    @model_validator(mode="after")
    def _price_range(self) -> Filters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price ({self.min_price:g}) must not exceed max_price ({self.max_price:g})")
        return self

    def to_domain(self) -> ItemFilters:
        """The filters as logic takes them."""
        categories = [self.category] if isinstance(self.category, str) else list(self.category or [])
        return ItemFilters(
            categories=tuple(dict.fromkeys(categories)),
            min_price=self.min_price,
            max_price=self.max_price,
            exclude_ids=frozenset(self.exclude_ids),
        )


class RecommendationRequest(_Request):
    """``POST /api/v1/recommendations``."""

    user_id: EntityId = Field(examples=["user_0001"])
    count: Count = 10
    filters: Filters = Field(default_factory=Filters)
    exclude_purchased: bool = True

    @field_validator("filters", mode="before")
    @classmethod
    def _null_filters(cls, value: object) -> object:
        return {} if value is None else value

    def to_domain(self) -> RecommendationQuery:
        """The request as logic takes it."""
        return RecommendationQuery(
            user_id=self.user_id,
            count=self.count,
            filters=self.filters.to_domain(),
            exclude_purchased=self.exclude_purchased,
        )


class RecommendedItem(BaseModel):
    """One recommended item."""

    item_id: str
    title: str
    score: float
    category: str
    price: float | None
    reason: str

    @classmethod
    def from_domain(cls, item: ScoredItem) -> RecommendedItem:
        """Map a scored item."""
        return cls(
            item_id=item.item_id,
            title=item.title,
            score=item.score,
            category=item.category,
            price=item.price,
            reason=item.reason,
        )


class AbTestArm(BaseModel):
    """Which test and variant a response belongs to."""

    test_id: str
    variant: str


class RecommendationMetadata(BaseModel):
    """How the list was made."""

    model_version: str | None = Field(examples=["lightgcn_v1"])
    latency_ms: float = Field(description="time spent in the serving logic for this request")
    cache_hit: bool
    algorithm: str = Field(examples=["lightgcn", "popular"])
    recommendation_id: str = Field(
        description="send it back as `recommendation_id` on interactions to attribute them to this list"
    )
    ab_test: AbTestArm | None = Field(default=None, description="the A/B test arm that chose the model")

    @classmethod
    def from_domain(cls, result: Recommendations) -> RecommendationMetadata:
        """Map a result's metadata."""
        return cls(
            model_version=result.model_version,
            latency_ms=result.latency_ms,
            cache_hit=result.cache_hit,
            algorithm=result.algorithm,
            recommendation_id=result.recommendation_id,
            ab_test=AbTestArm(test_id=result.ab_test[0], variant=result.ab_test[1])
            if result.ab_test
            else None,
        )


class RecommendationResponse(BaseModel):
    """``POST /api/v1/recommendations``: items best first, and metadata."""

    recommendations: list[RecommendedItem]
    metadata: RecommendationMetadata

    @classmethod
    def from_domain(cls, result: Recommendations) -> RecommendationResponse:
        """Map a result."""
        return cls(
            recommendations=[RecommendedItem.from_domain(item) for item in result.items],
            metadata=RecommendationMetadata.from_domain(result),
        )


class SimilarItemsResponse(BaseModel):
    """``GET /api/v1/items/{item_id}/similar``."""

    item_id: str
    similar_items: list[RecommendedItem]
    metadata: RecommendationMetadata

    @classmethod
    def from_domain(cls, item_id: str, result: Recommendations) -> SimilarItemsResponse:
        """Map a result."""
        return cls(
            item_id=item_id,
            similar_items=[RecommendedItem.from_domain(item) for item in result.items],
            metadata=RecommendationMetadata.from_domain(result),
        )


class Liveness(BaseModel):
    """``GET /health``."""

    status: str


class ModelHealthResponse(BaseModel):
    """``GET /api/v1/health``: the caller's tenant, as the walkthrough's Step 2.3."""

    status: str = Field(examples=["healthy"])
    model_loaded: bool
    model_version: str | None = Field(examples=["lightgcn_v1"])
    index_loaded: bool
    index_size: int = Field(examples=[5000])
    cache_connected: bool

    @classmethod
    def from_domain(cls, health: ModelHealth) -> ModelHealthResponse:
        """Map the domain health."""
        return cls(
            status=health.status,
            model_loaded=health.model_loaded,
            model_version=health.model_version,
            index_loaded=health.index_loaded,
            index_size=health.index_size,
            cache_connected=health.cache_connected,
        )
