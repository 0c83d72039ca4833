"""One list of model types: the API, the trainer and the console all use the contract's."""

from __future__ import annotations

from pathlib import Path
from typing import get_args, get_type_hints

from contract.model_types import DEFAULT_MODEL_TYPE, MODEL_TYPES, ModelType
from functions.identity.models import Permission, Principal, Role
from functions.training.routes.training import TrainingTrigger, get_model_types
from training_jobs.config import TrainingConfig

CONSOLE = Path(__file__).resolve().parents[2] / "functions" / "api" / "console" / "app.js"
PRINCIPAL = Principal("tenant_a", "acc_1", "user", Role.ADMIN, frozenset(Permission))


def test_api_and_trainer_model_types_agree() -> None:
    assert get_args(ModelType) == MODEL_TYPES
    assert get_type_hints(TrainingConfig)["model_type"] == ModelType
    assert get_args(get_type_hints(TrainingTrigger)["model_type"]) == (ModelType, type(None))
    assert DEFAULT_MODEL_TYPE == "auto" == TrainingConfig().model_type


def test_the_api_lists_the_model_types_the_console_offers() -> None:
    assert get_model_types(PRINCIPAL).model_dump() == {"model_types": list(MODEL_TYPES), "default": "auto"}
    console = CONSOLE.read_text()
    assert "/api/admin/training/model-types" in console  # the console's choices come from the API
