"""One list of model types: the API, the trainer and the console all use the contract's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args, get_type_hints

from contract.model_types import DEFAULT_MODEL_TYPE, MODEL_TYPES, ModelType
from functions.training.routes.training import TrainingTrigger
from training_jobs.config import TrainingConfig

CONSOLE = Path(__file__).resolve().parents[2] / "functions" / "api" / "console" / "index.html"


def test_api_and_trainer_model_types_agree() -> None:
    assert get_args(ModelType) == MODEL_TYPES
    assert get_type_hints(TrainingConfig)["model_type"] == ModelType
    assert get_args(get_type_hints(TrainingTrigger)["model_type"]) == (ModelType, type(None))
    assert DEFAULT_MODEL_TYPE == "auto" == TrainingConfig().model_type


def test_console_offers_every_model_type() -> None:
    select = re.search(r'<select name="model_type">(.*?)</select>', CONSOLE.read_text(), re.S)
    assert select is not None
    assert tuple(re.findall(r'value="([a-z_]+)"', select.group(1))) == MODEL_TYPES
