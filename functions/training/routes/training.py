"""Training on demand and its progress (tenant admins train their own tenant only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from contract.model_types import DEFAULT_MODEL_TYPE, MODEL_TYPES
from functions.common.errors import PermissionDeniedError
from functions.http.dependencies import ClockDep, SettingsDep
from functions.http.principal import Reader, TenantAdmin
from functions.training.control import JobRequest, job_view, start_training
from functions.training.dependencies import TrainingJobs, TrainingWorkflow
from functions.training.schemas import ModelTypes, TrainingQueued, TrainingStatus, TrainingTrigger

router = APIRouter(prefix="/api/admin/training", tags=["training"])
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^job_[A-Za-z0-9]+$")]


@router.get("/model-types", response_model=ModelTypes)
def get_model_types(_caller: Reader) -> ModelTypes:
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
    request = JobRequest(model_type=body.model_type or DEFAULT_MODEL_TYPE, config=config, trigger="api")
    job = start_training(jobs, workflow, principal.tenant_id, request, now=now)
    return TrainingQueued(
        job_id=job.job_id,
        status=str(job.status),
        estimated_duration_minutes=int(job.estimated_duration_minutes or 0),
    )


@router.get("/status/{job_id}", response_model=TrainingStatus)
def get_status(job_id: JobId, principal: Reader, settings: SettingsDep, jobs: TrainingJobs) -> TrainingStatus:
    """A job of the caller's tenant."""
    return job_view(jobs.get(principal.tenant_id, job_id), settings.artifacts_bucket, principal.tenant_id)
