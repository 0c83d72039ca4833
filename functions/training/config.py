"""The training configuration a tenant may ask for (validated by the API, again by the trainer)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from functions.common.request_models import RequestModel
from functions.ingestion.schema import EARLIEST_TIMESTAMP


class DatasetOptions(RequestModel):
    """Which interactions a job trains on: PrepareDataset reads these, the trainer never sees them."""

    model_config = ConfigDict(extra="ignore")

    #: Days of history, counted back from ``as_of`` or, by default, from the newest interaction.
    window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    #: Where the window ends: a date (its whole day included) or an instant with a time zone.
    as_of: AwareDatetime | date | None = None

    @field_validator("as_of")
    @classmethod
    def _plausible(cls, value: datetime | date | None) -> datetime | date | None:
        if value is not None and _end_of(value) <= EARLIEST_TIMESTAMP:
            raise ValueError(f"as_of must be after {EARLIEST_TIMESTAMP.date().isoformat()}")
        return value

    def window_end(self) -> datetime | None:
        """The exclusive end of the window ``as_of`` asks for (None: the newest interaction's)."""
        return _end_of(self.as_of) if self.as_of is not None else None

    def dataset_options(self) -> dict[str, Any]:
        """The options the caller set, as the workflow's JSON input carries them."""
        return self.model_dump(mode="json", include=set(DatasetOptions.model_fields), exclude_none=True)


class TrainingConfigIn(DatasetOptions):
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
    #: An event's weight halves per this many days before the newest event (every model honours it).
    recency_half_life_days: Annotated[float, Field(gt=0.0, le=3650.0)] | None = None
    #: Newest share of the window's interactions that judges the candidate against the active model.
    gate_fraction: Annotated[float, Field(ge=0.05, le=0.4)] | None = None

    def as_overrides(self) -> dict[str, int | float]:
        """Only the trainer's fields the caller set (the trainer's defaults fill the rest)."""
        return self.model_dump(exclude_none=True, exclude=set(DatasetOptions.model_fields))


def trainer_config(config: dict[str, Any]) -> dict[str, Any]:
    """A job's config without the dataset options (the trainer refuses keys it does not know)."""
    return {key: value for key, value in config.items() if key not in DatasetOptions.model_fields}


def _end_of(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value + timedelta(days=1), time(), tzinfo=UTC)
