"""Training on demand and its progress (tenant admins train their own tenant only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from contract.model_types import DEFAULT_MODEL_TYPE, MODEL_TYPES, ModelType
from functions.common.errors import PermissionDeniedError
from functions.common.request_models import RequestModel
from functions.http.dependencies import ClockDep, SettingsDep
from functions.http.principal import Reader, TenantAdmin
from functions.training.config import TrainingConfigIn
from functions.training.control import job_view, start_training
from functions.training.dependencies import TrainingJobs, TrainingWorkflow

router = APIRouter(prefix="/api/admin/training", tags=["training"])
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^job_[A-Za-z0-9]+$")]


class TrainingTrigger(RequestModel):
    """``POST /api/admin/training/trigger`` (the walkthrough's body; everything optional)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: Annotated[str, Field(max_length=64)] | None = None
    model_type: ModelType | None = None
    config: TrainingConfigIn = Field(default_factory=TrainingConfigIn)


class TrainingQueued(BaseModel):
    """The trigger's answer."""

    job_id: str
    status: str
    estimated_duration_minutes: int
    started_at: str | None = None


class TrainingStatus(BaseModel):
    """A job's state: progress while running; metrics, artifact paths and the promotion outcome after."""

    job_id: str
    status: str
    progress: int
    current_epoch: int | None = None
    total_epochs: int | None = None
    metrics: dict[str, Any]
    model_version: str | None = None
    model_path: str | None = None
    index_path: str | None = None
    deployed: bool
    #: The interactions trained on (``start`` inclusive, ``end`` exclusive) once the dataset is prepared.
    data_window: dict[str, str | int] | None = None
    decision: str | None = None
    error: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class ModelTypes(BaseModel):
    """The model types a training job may ask for, and the one it gets when it names none."""

    model_types: list[ModelType]
    default: ModelType


@router.get("/model-types", response_model=ModelTypes)
def get_model_types(principal: Reader) -> ModelTypes:
    """What ``model_type`` accepts (the console's choices come from here)."""
    return ModelTypes(model_types=list(MODEL_TYPES), default=DEFAULT_MODEL_TYPE)


@router.post("/trigger", status_code=status.HTTP_202_ACCEPTED, response_model=TrainingQueued)
def post_trigger(
    body: TrainingTrigger,
    principal: TenantAdmin,
    now: ClockDep,
    jobs: TrainingJobs,
    workflow: TrainingWorkflow,
) -> TrainingQueued:
    """Start training now. One job per tenant at a time: a second trigger while one runs is a 409."""
    if body.tenant_id is not None and body.tenant_id != principal.tenant_id:
        raise PermissionDeniedError("tenant admins may only train their own tenant")
    config: dict[str, Any] = {**body.config.as_overrides(), **body.config.dataset_options()}
    job = start_training(
        jobs,
        workflow,
        principal.tenant_id,
        model_type=body.model_type or DEFAULT_MODEL_TYPE,
        config=config,
        trigger="api",
        now=now,
    )
    return TrainingQueued(
        job_id=job["job_id"],
        status=job["status"],
        estimated_duration_minutes=job["estimated_duration_minutes"],
    )


@router.get("/status/{job_id}", response_model=TrainingStatus)
def get_status(job_id: JobId, principal: Reader, settings: SettingsDep, jobs: TrainingJobs) -> TrainingStatus:
    """A job of the caller's tenant."""
    record = jobs.get(principal.tenant_id, job_id)
    return TrainingStatus(**job_view(record, settings.artifacts_bucket, principal.tenant_id))
