"""Request and response models of the training and models routes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from contract.model_types import ModelType
from functions.common.request_models import RequestModel
from functions.training.config import TrainingConfigIn
from functions.training.store.model_registry import GateSummary


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
    gate: GateSummary | None = None
    decision: str | None = None
    job_id: str | None = None
    created_at: str | None = None


class ModelList(BaseModel):
    """``GET /api/v1/models``."""

    active_version: str | None
    models: list[ModelOut]
