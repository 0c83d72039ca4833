"""Validated training configuration and job arguments (pydantic): bad values fail before any work."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.interactions import INTERACTION_TYPES, INTERACTION_WEIGHTS, InteractionType
from contract.layout import MANIFEST, MODELS_PREFIX
from contract.model_types import DEFAULT_MODEL_TYPE, ModelType
from training_jobs.errors import ConfigError

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
ManifestKey = Annotated[
    str, Field(pattern=rf"^{re.escape(MODELS_PREFIX)}[A-Za-z0-9._/-]{{1,900}}/{re.escape(MANIFEST)}$")
]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class TrainingConfig(BaseModel):
    """Hyper-parameters of one training job (the ``config`` object of the training trigger)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    model_type: ModelType = DEFAULT_MODEL_TYPE
    embedding_dim: int = Field(64, ge=4, le=1024)
    num_layers: int = Field(3, ge=0, le=8)
    epochs: int = Field(30, ge=1, le=5000)
    learning_rate: float = Field(5e-3, gt=0, le=1.0)
    batch_size: int = Field(2048, ge=8, le=1_048_576)
    reg_weight: float = Field(0.0, ge=0, le=10.0)
    num_negatives: int = Field(
        1024,
        ge=0,
        le=1_000_000,
        description="softmax: shared sampled negatives (0 = all items); bpr: per positive",
    )
    patience: int = Field(3, ge=0, le=1000, description="evaluations without better val NDCG@10; 0 = off")
    loss: Literal["softmax", "bpr"] = "softmax"
    temperature: float = Field(1.0, gt=0, le=10.0)
    normalize: bool = False
    lightgcn_init: Literal["auto", "normal", "spectral"] = Field(
        "auto",
        description="LightGCN egos: N(0, 0.1), the graph filter's singular vectors, or auto (spectral where "
        "the CPU batch was enlarged, else normal)",
    )
    eval_every: int = Field(1, ge=1, le=1000)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    time_budget_s: float | None = Field(None, gt=0, le=7 * 24 * 3600)
    selection_budget_s: float | None = Field(
        9000,
        gt=0,
        le=7 * 24 * 3600,
        description="wall time for fitting candidates, summed over retried attempts: past it no further "
        "candidate starts and the best finished one is chosen (None = no limit)",
    )
    use_interaction_weights: bool = True
    interaction_weights: dict[InteractionType, PositiveFloat] = Field(
        default_factory=lambda: dict(INTERACTION_WEIGHTS)
    )
    recency_half_life_days: float | None = Field(
        None,
        gt=0,
        le=3650,
        description="an event's weight halves per this many days before the newest event (None = off)",
    )
    als_factors: int | None = Field(None, ge=4, le=1024, description="ALS factors (None = chosen)")
    als_regularization: float | None = Field(None, gt=0, le=1000)
    als_alpha: float | None = Field(None, gt=0, le=1000, description="ALS confidence 1 + alpha * weight")
    als_iterations: int = Field(15, ge=1, le=200)
    selection_max_users: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="candidates are scored on at most this many validation users (a fixed, seeded sample)",
    )
    ease_l2: float | None = Field(None, gt=0, le=1e7, description="EASE L2 (None = chosen)")
    ease_rank: int = Field(
        256, ge=4, le=20_000, description="rank of EASE's exported factors (>= the item count: exact B)"
    )
    graph_filter_rank: int | None = Field(
        None, ge=4, le=2048, description="graph filter: singular vectors kept (None = chosen by size)"
    )
    graph_filter_beta: float | None = Field(
        None, ge=0, le=1, description="graph filter: item degree exponent (None = chosen)"
    )
    require_non_view: bool = Field(True, description="fail when every interaction is a view")
    validation_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="newest share of the events before the gate holdout: selection split"
    )
    gate_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="newest share of the window's events: the promotion gate's holdout"
    )
    gate_max_users: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="the gate judges at most this many of its holdout's users (a fixed, seeded sample)",
    )
    quality_floor: float = Field(
        0.0, ge=0, le=1, description="gate NDCG@10 a candidate must reach to be promoted (besides popularity)"
    )
    min_events_for_validation: int = Field(3, ge=2, le=1000)
    foldin_blend: float = Field(0.5, ge=0, le=1)
    price_buckets: int = Field(10, ge=1, le=100)
    exact_index_max_items: int = Field(100_000, ge=1, description="IndexFlatIP up to this many items")
    large_index_type: Literal["hnsw", "ivf"] = "hnsw"
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_construction: int = Field(200, ge=8, le=4096)
    hnsw_ef_search: int = Field(128, ge=8, le=4096)
    ivf_nprobe: int = Field(32, ge=1, le=65536)
    popular_top_n: int = Field(200, ge=1, le=200)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="torch threads on CPU; default half the cores (oversubscription is slow)",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingConfig:
        if self.loss == "bpr" and self.num_negatives < 1:
            raise ValueError("loss 'bpr' needs num_negatives >= 1")
        weights = self.interaction_weights
        missing = [name for name in INTERACTION_TYPES if name not in weights]
        if missing:
            raise ValueError(f"interaction_weights is missing {missing}")
        if not weights["purchase"] >= weights["add_to_cart"] >= weights["click"] >= weights["view"]:
            raise ValueError("interaction_weights must satisfy purchase >= add_to_cart >= click >= view")
        return self


class JobArguments(BaseModel):
    """Where the job reads and writes; identifiers are restricted so they are safe in S3 keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: Identifier
    job_id: Identifier
    dataset_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}/.*$")]
    artifacts_bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,62}$")]
    version: Identifier
    jobs_table: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
    #: The serving version's manifest in ``artifacts_bucket`` (none: the tenant has no active model).
    active_manifest_key: ManifestKey | None = None

    @field_validator("dataset_uri")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/") + "/"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "config"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def parse_config(raw: str | dict[str, Any] | None) -> TrainingConfig:
    """Parse the config JSON (or dict); NaN/inf/out-of-range/unknown keys raise :class:`ConfigError`."""
    if raw is None or raw == "":
        data: Any = {}
    elif isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid training config: not valid JSON ({exc.msg})") from exc
    else:
        data = raw
    if not isinstance(data, dict):
        raise ConfigError("invalid training config: expected a JSON object")
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid training config: {_describe(exc)}") from exc


def parse_job_arguments(values: Mapping[str, str | None]) -> JobArguments:
    """Validate the job's location arguments; a missing or malformed one raises :class:`ConfigError`."""
    present = {key: value for key, value in values.items() if value not in (None, "")}
    try:
        return JobArguments.model_validate(present)
    except ValidationError as exc:
        raise ConfigError(f"invalid job arguments: {_describe(exc)}") from exc


def default_version(model_type: str, job_id: str) -> str:
    """A version name for a job that was not given one: ``{model_type}_{job_id}``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{model_type}_{job_id}")[:128]


def cpu_threads_for(requested: int | None) -> int:
    """The CPU threads a job uses: ``requested``, else half the cores (oversubscription is slow)."""
    return requested or max(1, (os.cpu_count() or 2) // 2)
