"""The model types a training job may ask for (the API, the console and the trainer accept these)."""

from __future__ import annotations

from typing import Final, Literal, get_args

TrainedModelType = Literal["lightgcn", "two_tower", "als", "ease", "graph_filter"]
"""The model families a job can train (each candidate is one of them)."""
ModelType = Literal["auto", TrainedModelType]
"""What a job may ask for: one family, or ``auto``, which trains the candidates that fit the tenant and
publishes the best."""
MODEL_TYPES: Final[tuple[ModelType, ...]] = get_args(ModelType)
DEFAULT_MODEL_TYPE: Final[ModelType] = "auto"
