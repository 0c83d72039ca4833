"""``POST /api/v1/recommendations``: a user's personalised (or popular) items."""

from __future__ import annotations

from fastapi import APIRouter

from functions.http.principal import Reader
from functions.serving.dependencies import ServiceDep
from functions.serving.routes import off_the_loop_if_blocking
from functions.serving.schemas import RecommendationRequest, RecommendationResponse

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"])


@router.post("", response_model=RecommendationResponse)
async def post_recommendations(
    body: RecommendationRequest, principal: Reader, service: ServiceDep
) -> RecommendationResponse:
    """Up to ``count`` items for ``user_id``, best first, each satisfying every filter.

    Users the model has not seen get popular items (``algorithm: "popular"``); events sent after
    training change the list at once. Purchased items are left out unless ``exclude_purchased`` is false.
    """
    query = body.to_domain()
    result = await off_the_loop_if_blocking(
        lambda: service.recommend(principal.tenant_id, query), retryable=service.answers_on_event_loop
    )
    return RecommendationResponse.from_domain(result)
