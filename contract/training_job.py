"""The training-job record (table ``training-jobs``, key ``tenant_id`` + ``job_id``).

The workflow's Lambda functions open and close it (``functions.training``); the training container
updates its progress, metrics and outcome as it runs (``training_jobs.storage``). Both build every
write through these models, so neither can write a field the other does not know.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

JobStatus = Literal["queued", "running", "completed", "failed"]


class TrainingJobFields(BaseModel):
    """Every attribute of a job record but its key; a write sets some of them."""

    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = None
    progress: int | None = None
    current_epoch: int | None = None
    total_epochs: int | None = None
    model_type: str | None = None
    #: The training configuration the job was asked for (the trainer's fields and the dataset options).
    config: dict[str, Any] | None = None
    trigger: str | None = None
    #: The trainer's latest metrics (``ndcg_10`` ..., ``training_time_seconds``).
    metrics: dict[str, Any] | None = None
    deployed: bool | None = None
    decision: str | None = None
    error: str | None = None
    estimated_duration_minutes: int | None = None
    execution_arn: str | None = None
    batch_job_id: str | None = None
    model_version: str | None = None
    #: PrepareDataset's result (``contract.workflow.PreparedDataset``).
    dataset: dict[str, Any] | None = None
    artifacts_prefix: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    failed_at: str | None = None
    finished_at: str | None = None

    def item(self) -> dict[str, Any]:
        """The attributes this write sets, as plain values."""
        return self.model_dump(exclude_unset=True)


def job_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` checked against the record's fields (``ValidationError`` for an unknown one)."""
    return TrainingJobFields.model_validate(changes).item()


class TrainingJobRecord(TrainingJobFields):
    """A whole job record as stored."""

    tenant_id: str
    job_id: str
