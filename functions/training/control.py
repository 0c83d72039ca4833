"""Starting training and reading its state: the logic behind the training and models routes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from contract import layout
from contract.training_job import TrainingJobFields, TrainingJobRecord
from contract.workflow import ExecutionInput
from functions.common.dynamo import to_iso
from functions.common.errors import ServiceUnavailableError
from functions.common.ids import new_id
from functions.training.schemas import ModelList, ModelOut, TrainingStatus
from functions.training.steps import activate_version
from functions.training.store.model_registry import ModelRegistry
from functions.training.store.training_jobs import TrainingJobRepository

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# A job holding the tenant's lock longer than this died without releasing it.
# At least the workflow's TimeoutSeconds (14 h): a lock is taken over only once its execution has ended.
LOCK_MAX_AGE = timedelta(hours=14)
_FALLBACK_MINUTES_PER_EPOCH = 0.25


@dataclass(frozen=True)
class Workflow:
    """Where and how executions start."""

    sfn: SFNClient
    state_machine_arn: str
    poll_seconds: int


@dataclass(frozen=True)
class JobRequest:
    """What a training job is asked to do, and who asked (``api`` or ``schedule``)."""

    model_type: str
    #: The trainer's fields and the dataset options.
    config: dict[str, Any]
    trigger: str


def open_job(
    jobs: TrainingJobRepository, tenant_id: str, request: JobRequest, *, now: datetime
) -> TrainingJobRecord:
    """Take the tenant's training lock and create the job record (``ConflictError`` if one runs)."""
    job_id = new_id("job")
    jobs.acquire_lock(tenant_id, job_id, now, LOCK_MAX_AGE)
    epochs = int(request.config.get("epochs", 0)) or None
    record = TrainingJobRecord(
        tenant_id=tenant_id,
        job_id=job_id,
        status="queued",
        progress=0,
        current_epoch=0,
        total_epochs=epochs,
        model_type=request.model_type,
        config=request.config,
        trigger=request.trigger,
        metrics={},
        deployed=False,
        created_at=to_iso(now),
        estimated_duration_minutes=estimate_minutes(jobs, tenant_id, epochs),
    )
    jobs.create(record)
    return record


def start_training(
    jobs: TrainingJobRepository, workflow: Workflow, tenant_id: str, request: JobRequest, *, now: datetime
) -> TrainingJobRecord:
    """Open a job and start the workflow execution named after it."""
    job = open_job(jobs, tenant_id, request, now=now)
    execution_input = ExecutionInput(
        tenant_id=tenant_id,
        job_id=job.job_id,
        model_type=request.model_type,
        config=request.config,
        poll_seconds=workflow.poll_seconds,
    )
    try:
        execution = workflow.sfn.start_execution(
            stateMachineArn=workflow.state_machine_arn,
            name=job.job_id,
            input=json.dumps(execution_input.as_json()),
        )
    except (ClientError, BotoCoreError) as exc:  # a failed start must free the lock, then surface as 503
        jobs.update(
            tenant_id,
            job.job_id,
            TrainingJobFields(status="failed", error="the workflow could not be started"),
        )
        jobs.release_lock(tenant_id, job.job_id)
        raise ServiceUnavailableError("the training workflow could not be started, please retry") from exc
    jobs.update(tenant_id, job.job_id, TrainingJobFields(execution_arn=execution["executionArn"]))
    return job


def estimate_minutes(jobs: TrainingJobRepository, tenant_id: str, epochs: int | None) -> int:
    """Minutes the job will likely take: the tenant's last run scaled by epochs, else a rule of thumb."""
    for past in jobs.list_for_tenant(tenant_id):
        seconds = (past.metrics or {}).get("training_time_seconds")
        past_epochs = int(past.current_epoch or past.total_epochs or 0)
        if seconds and past_epochs:
            return max(1, math.ceil(float(seconds) / 60 * (epochs or past_epochs) / past_epochs) + 2)
    return max(1, math.ceil((epochs or 20) * _FALLBACK_MINUTES_PER_EPOCH) + 3)


def job_view(record: TrainingJobRecord, artifacts_bucket: str, tenant_id: str) -> TrainingStatus:
    """A job record as the status API shows it (the walkthrough's running and completed shapes)."""
    status = record.status or "queued"
    model_path = index_path = None
    if status == "completed" and record.model_version:
        version = record.model_version
        model_path = f"s3://{artifacts_bucket}/{layout.artifact_key(tenant_id, version, layout.USER_TOWER)}"
        index_path = f"s3://{artifacts_bucket}/{layout.artifact_key(tenant_id, version, layout.ITEM_INDEX)}"
    return TrainingStatus(
        job_id=record.job_id,
        status=status,
        progress=int(record.progress or 0),
        current_epoch=record.current_epoch,
        total_epochs=record.total_epochs,
        metrics=record.metrics if record.metrics is not None else {},
        model_version=record.model_version,
        deployed=bool(record.deployed),
        data_window=(record.dataset or {}).get("window"),
        decision=record.decision,
        error=record.error,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        model_path=model_path,
        index_path=index_path,
    )


def list_models(registry: ModelRegistry, tenant_id: str) -> ModelList:
    """Every version with its metrics, and which is active."""
    active = registry.active(tenant_id)
    return ModelList(
        active_version=active.version if active else None,
        models=[
            ModelOut(
                version=record.version,
                model_type=record.model_type,
                status=record.status,
                active=active is not None and record.version == active.version,
                metrics=record.metrics,
                baseline_metrics=record.baseline_metrics if record.baseline_metrics is not None else {},
                gate=record.gate,
                decision=record.decision,
                job_id=record.job_id,
                created_at=record.created_at,
            )
            for record in registry.list_versions(tenant_id)
        ],
    )


def activate_model(registry: ModelRegistry, tenant_id: str, version: str, *, now: datetime) -> ModelList:
    """Roll back or forward to an existing, trained version (tenant admin's decision)."""
    activate_version(
        registry,
        tenant_id,
        version,
        expected=None,
        now=now,
        reason=f"activated by a tenant admin on {to_iso(now)}",
    )
    return list_models(registry, tenant_id)
