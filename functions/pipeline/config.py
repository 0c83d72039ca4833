"""The training configuration a tenant may ask for (validated by the API, again by the trainer)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ModelType = Literal["lightgcn", "two_tower"]


class TrainingConfigIn(BaseModel):
    """``config`` of ``POST /api/admin/training/trigger``: every field optional, ranges enforced."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    embedding_dim: Annotated[int, Field(ge=8, le=512)] | None = None
    num_layers: Annotated[int, Field(ge=0, le=6)] | None = None
    epochs: Annotated[int, Field(ge=1, le=1000)] | None = None
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    batch_size: Annotated[int, Field(ge=16, le=262_144)] | None = None
    reg_weight: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    num_negatives: Annotated[int, Field(ge=0, le=4096)] | None = None
    patience: Annotated[int, Field(ge=0, le=1000)] | None = None
    window_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    def as_overrides(self) -> dict[str, int | float]:
        """Only the fields the caller set (the trainer's defaults fill the rest)."""
        return self.model_dump(exclude_none=True, exclude={"window_days"})
