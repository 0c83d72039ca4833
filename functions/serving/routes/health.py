"""``GET /health`` (liveness, no credential) and ``GET /api/v1/health`` (the caller's model)."""

from __future__ import annotations

from fastapi import APIRouter

from functions.http.principal import Reader
from functions.serving.dependencies import ServiceDep
from functions.serving.schemas import Liveness, ModelHealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Liveness)
def get_liveness() -> Liveness:
    """Liveness: the function is up and can take requests."""
    return Liveness(status="healthy")


@router.get("/api/v1/health", response_model=ModelHealthResponse)
def get_model_health(principal: Reader, service: ServiceDep) -> ModelHealthResponse:
    """The caller's tenant: whether its model and index are loaded, which version, how many items."""
    return ModelHealthResponse.from_domain(service.health(principal.tenant_id))
