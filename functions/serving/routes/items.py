"""``GET /api/v1/items/{item_id}/similar``: item-to-item recommendations from the tenant's index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from functions.http.principal import Reader
from functions.serving.dependencies import ServiceDep
from functions.serving.routes import off_the_loop_if_blocking
from functions.serving.schemas import ID_PATTERN, MAX_COUNT, SimilarItemsResponse

router = APIRouter(prefix="/api/v1/items", tags=["items"])
ItemId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]


@router.get("/{item_id:path}/similar", response_model=SimilarItemsResponse)
async def get_similar_items(
    item_id: ItemId,
    principal: Reader,
    service: ServiceDep,
    count: Annotated[int, Query(ge=1, le=MAX_COUNT)] = 10,
) -> SimilarItemsResponse:
    """The ``count`` items nearest to ``item_id`` (never the item itself); 404 for an unknown item.

    An id with ``/`` is one percent-encoded segment (``sku%2F1``).
    """
    result = await off_the_loop_if_blocking(lambda: service.similar(principal.tenant_id, item_id, count))
    return SimilarItemsResponse.from_domain(item_id, result)
