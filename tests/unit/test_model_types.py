"""The model types the API accepts are the ones the trainer knows, and the console offers them all."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from functions.training import config as api_config
from training_jobs import config as trainer_config

CONSOLE = Path(__file__).resolve().parents[2] / "functions" / "api" / "console" / "index.html"


def test_api_and_trainer_model_types_agree() -> None:
    assert get_args(api_config.ModelType) == get_args(trainer_config.ModelType) == trainer_config.MODEL_TYPES
    assert api_config.DEFAULT_MODEL_TYPE == "auto" == trainer_config.TrainingConfig().model_type


def test_console_offers_every_model_type() -> None:
    select = re.search(r'<select name="model_type">(.*?)</select>', CONSOLE.read_text(), re.S)
    assert select is not None
    assert tuple(re.findall(r'value="([a-z_]+)"', select.group(1))) == trainer_config.MODEL_TYPES
