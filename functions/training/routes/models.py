"""A tenant's model versions: list with metrics, activate (roll back or forward)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from functions.http.dependencies import ClockDep
from functions.http.principal import Reader, TenantAdmin
from functions.training.control import activate_model, list_models
from functions.training.dependencies import Models

router = APIRouter(prefix="/api/v1/models", tags=["models"])
Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+_v[0-9]+$")]


class ModelOut(BaseModel):
    """One version."""

    version: str
    model_type: str | None = None
    status: str | None = None
    active: bool
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any] = {}
    #: The training job's gate: NDCG@10 of the candidate, the then-active model and popularity on one
    #: holdout (``candidate``, ``active``, ``active_version``, ``popularity``, ``promote``).
    gate: dict[str, Any] | None = None
    decision: str | None = None
    job_id: str | None = None
    created_at: str | None = None


class ModelList(BaseModel):
    """``GET /api/v1/models``."""

    active_version: str | None
    models: list[ModelOut]


@router.get("", response_model=ModelList)
def get_models(principal: Reader, registry: Models) -> ModelList:
    """Every trained version, newest first, and which one serves."""
    return ModelList(**list_models(registry, principal.tenant_id))


@router.post("/{version}/activate", response_model=ModelList)
def post_activate(version: Version, principal: TenantAdmin, now: ClockDep, registry: Models) -> ModelList:
    """Make a trained version the active one (rollback or roll-forward).

    Serving picks the change up within its refresh interval.
    """
    return ModelList(**activate_model(registry, principal.tenant_id, version, now=now))
