"""Starting training and reading its state: the logic behind the training and models routes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from contract import layout
from contract.workflow import ExecutionInput
from functions.common.dynamo import to_iso
from functions.common.errors import ServiceUnavailableError
from functions.common.ids import new_id
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


def open_job(
    jobs: TrainingJobRepository,
    tenant_id: str,
    *,
    model_type: str,
    config: dict[str, Any],
    trigger: str,
    now: datetime,
) -> dict[str, Any]:
    """Take the tenant's training lock and create the job record (``ConflictError`` if one runs)."""
    job_id = new_id("job")
    jobs.acquire_lock(tenant_id, job_id, now, LOCK_MAX_AGE)
    epochs = int(config.get("epochs", 0)) or None
    record = {
        "status": "queued",
        "progress": 0,
        "current_epoch": 0,
        "total_epochs": epochs,
        "model_type": model_type,
        "config": config,
        "trigger": trigger,
        "metrics": {},
        "deployed": False,
        "created_at": to_iso(now),
        "estimated_duration_minutes": estimate_minutes(jobs, tenant_id, epochs),
    }
    jobs.create(tenant_id, job_id, record)
    return {"job_id": job_id, **record}


def start_training(
    jobs: TrainingJobRepository,
    workflow: Workflow,
    tenant_id: str,
    *,
    model_type: str,
    config: dict[str, Any],
    trigger: str,
    now: datetime,
) -> dict[str, Any]:
    """Open a job and start the workflow execution named after it."""
    job = open_job(jobs, tenant_id, model_type=model_type, config=config, trigger=trigger, now=now)
    execution_input = ExecutionInput(
        tenant_id=tenant_id,
        job_id=job["job_id"],
        model_type=model_type,
        config=config,
        poll_seconds=workflow.poll_seconds,
    )
    try:
        execution = workflow.sfn.start_execution(
            stateMachineArn=workflow.state_machine_arn,
            name=job["job_id"],
            input=json.dumps(execution_input.as_json()),
        )
    except (ClientError, BotoCoreError) as exc:  # a failed start must free the lock, then surface as 503
        jobs.update(
            tenant_id, job["job_id"], {"status": "failed", "error": "the workflow could not be started"}
        )
        jobs.release_lock(tenant_id, job["job_id"])
        raise ServiceUnavailableError("the training workflow could not be started, please retry") from exc
    jobs.update(tenant_id, job["job_id"], {"execution_arn": execution["executionArn"]})
    return job


def estimate_minutes(jobs: TrainingJobRepository, tenant_id: str, epochs: int | None) -> int:
    """Minutes the job will likely take: the tenant's last run scaled by epochs, else a rule of thumb."""
    for past in jobs.list_for_tenant(tenant_id):
        seconds = past.get("metrics", {}).get("training_time_seconds")
        past_epochs = int(past.get("current_epoch") or past.get("total_epochs") or 0)
        if seconds and past_epochs:
            return max(1, math.ceil(float(seconds) / 60 * (epochs or past_epochs) / past_epochs) + 2)
    return max(1, math.ceil((epochs or 20) * _FALLBACK_MINUTES_PER_EPOCH) + 3)


def job_view(record: dict[str, Any], artifacts_bucket: str, tenant_id: str) -> dict[str, Any]:
    """A job record as the status API shows it (the walkthrough's running and completed shapes)."""
    view: dict[str, Any] = {
        "job_id": record["job_id"],
        "status": record.get("status", "queued"),
        "progress": int(record.get("progress") or 0),
        "current_epoch": record.get("current_epoch"),
        "total_epochs": record.get("total_epochs"),
        "metrics": record.get("metrics", {}),
        "model_version": record.get("model_version"),
        "deployed": bool(record.get("deployed", False)),
        "data_window": (record.get("dataset") or {}).get("window"),
        "decision": record.get("decision"),
        "error": record.get("error"),
        "created_at": record.get("created_at"),
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "model_path": None,
        "index_path": None,
    }
    if view["status"] == "completed" and view["model_version"]:
        version = str(view["model_version"])
        view["model_path"] = (
            f"s3://{artifacts_bucket}/{layout.artifact_key(tenant_id, version, layout.USER_TOWER)}"
        )
        view["index_path"] = (
            f"s3://{artifacts_bucket}/{layout.artifact_key(tenant_id, version, layout.ITEM_INDEX)}"
        )
    return view


def list_models(registry: ModelRegistry, tenant_id: str) -> dict[str, Any]:
    """Every version with its metrics, and which is active."""
    active = registry.active(tenant_id)
    return {
        "active_version": active.version if active else None,
        "models": [
            {
                "version": record["version"],
                "model_type": record.get("model_type"),
                "status": record.get("status"),
                "active": active is not None and record["version"] == active.version,
                "metrics": record.get("metrics", {}),
                "baseline_metrics": record.get("baseline_metrics", {}),
                "gate": record.get("gate"),
                "decision": record.get("decision"),
                "job_id": record.get("job_id"),
                "created_at": record.get("created_at"),
            }
            for record in registry.list_versions(tenant_id)
        ],
    }


def activate_model(registry: ModelRegistry, tenant_id: str, version: str, *, now: datetime) -> dict[str, Any]:
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
