"""A tenant's model versions: list with metrics, activate (roll back or forward)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from functions.http.dependencies import ClockDep
from functions.http.principal import Reader, TenantAdmin
from functions.training.control import activate_model, list_models
from functions.training.dependencies import Models
from functions.training.schemas import ModelList

router = APIRouter(prefix="/api/v1/models", tags=["models"])
Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+_v[0-9]+$")]


@router.get("", response_model=ModelList)
def get_models(principal: Reader, registry: Models) -> ModelList:
    """Every trained version, newest first, and which one serves."""
    return list_models(registry, principal.tenant_id)


@router.post("/{version}/activate", response_model=ModelList)
def post_activate(version: Version, principal: TenantAdmin, now: ClockDep, registry: Models) -> ModelList:
    """Make a trained version the active one (rollback or roll-forward).

    Serving picks the change up within its refresh interval.
    """
    return activate_model(registry, principal.tenant_id, version, now=now)
