"""Fixtures of the emulated-container tests: a temporary code asset and the pools to close."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embedrec_local.lambda_runtime.pool import FunctionPool
from tests.functional.lambda_runtime.test_containers import HANDLERS


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A code asset holding ``handlers.py``, beside an empty runtime directory."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "handlers.py").write_text(HANDLERS)
    (tmp_path / "runtime").mkdir()
    return task


@pytest.fixture
def pools() -> Iterator[list[FunctionPool]]:
    """Pools a test made, closed (every container killed) after it."""
    made: list[FunctionPool] = []
    yield made
    for pool in made:
        pool.close()
