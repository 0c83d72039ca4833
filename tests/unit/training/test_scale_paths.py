"""The trainer's bounded-memory paths give the same numbers as the whole-array definitions."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch

from training_jobs.columns import codes_in, compact_codes, sorted_distinct
from training_jobs.data import InteractionGraph, build_graph, split_random_holdout
from training_jobs.evaluation import Evaluator
from training_jobs.models import base
from training_jobs.models.base import weighted_row_sums
from training_jobs.models.lightgcn import LightGCN
from training_jobs.trainer import EpochReport, TrainSettings, train_model


def test_codes_are_positions_in_the_sorted_distinct_values() -> None:
    # Given a chunked id column with a null and repeats
    column = pa.chunked_array([["b", "a", None], ["c", "a"]])
    # When it is coded against its sorted distinct values and against a set that lacks "c"
    distinct = sorted_distinct(column)
    codes = codes_in(column, distinct)
    partial = codes_in(column, pa.array(["a", "b"]))
    # Then the codes index the sorted values, and a null or missing value reads -1
    assert distinct.to_pylist() == ["a", "b", "c"]
    assert codes.dtype == np.int32 and codes.tolist() == [1, 0, -1, 2, 0]
    assert partial.tolist() == [1, 0, -1, -1, 0]


def test_compact_codes_keeps_only_the_values_that_occur_in_order() -> None:
    codes, old, used = compact_codes(np.array([3, 1, 3], dtype=np.int32), pa.array(["a", "b", "c", "d"]))
    assert codes.tolist() == [1, 0, 1]
    assert old.tolist() == [1, 3]
    assert used.tolist() == ["b", "d"]


def test_weighted_row_sums_in_chunks_equal_the_whole_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 1,000 weighted pairs over 50 rows and a 30 x 4 table, gathered 7 pairs at a time
    rng = np.random.default_rng(0)
    rows = torch.as_tensor(rng.integers(0, 50, 1000))
    cols = torch.as_tensor(rng.integers(0, 30, 1000))
    weights = torch.as_tensor(rng.random(1000).astype(np.float32))
    table = torch.as_tensor(rng.standard_normal((30, 4)).astype(np.float32))
    monkeypatch.setattr(base, "ROW_SUM_CHUNK", 7)
    # When the sums are computed in chunks
    sums, totals = weighted_row_sums(rows, cols, weights, table, 50)
    # Then they equal the one-shot pairs x dims product
    whole = torch.zeros(50, 4).index_add_(0, rows, table[cols] * weights.unsqueeze(1))
    assert torch.allclose(sums, whole, atol=1e-5)
    assert torch.allclose(totals, torch.zeros(50).index_add_(0, rows, weights), atol=1e-5)


class _Interrupted(Exception):
    """The run's process ending after an epoch (a spot reclaim)."""


class _MemoryCheckpoint:
    """An in-memory EpochCheckpoint that saves at every epoch boundary."""

    every_s = 0.0

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.saved_epochs: list[int] = []

    def load(self) -> dict[str, Any] | None:
        return self.state

    def save(self, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)  # what the S3 checkpoint stores, read back as a later attempt would
        self.state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
        self.saved_epochs.append(int(state["epoch"]))


def _block_run() -> tuple[LightGCN, InteractionGraph, Evaluator]:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 300)
    graph = build_graph(users, (users % 2) * 15 + rng.integers(0, 15, 300), 30, 30)
    train, hold_u, hold_i = split_random_holdout(graph, 0.2, seed=0)
    torch.manual_seed(0)
    model = LightGCN(30, 30, torch.as_tensor(train.users), torch.as_tensor(train.items), embedding_dim=8)
    return model, train, Evaluator(train, hold_u, hold_i, "cpu")


def test_an_interrupted_training_run_resumes_where_it_stopped() -> None:
    # Given the same LightGCN run (4 epochs) once uninterrupted and once killed after epoch 2's report
    settings = TrainSettings(epochs=4, learning_rate=0.02, batch_size=64, seed=3)
    model, train, evaluator = _block_run()
    whole = train_model(model, train, settings, evaluator)
    reference = {name: value.clone() for name, value in model.state_dict().items()}

    checkpoint = _MemoryCheckpoint()

    def die_after_second(report: EpochReport) -> None:
        if report.epoch == 2:
            raise _Interrupted

    model, train, evaluator = _block_run()
    with pytest.raises(_Interrupted):
        train_model(model, train, settings, evaluator, on_epoch=die_after_second, checkpoint=checkpoint)
    assert checkpoint.saved_epochs == [1]

    # When a fresh process (new model, same seed) runs it again with the checkpoint
    reported: list[int] = []
    model, train, evaluator = _block_run()
    resumed = train_model(
        model, train, settings, evaluator, on_epoch=lambda r: reported.append(r.epoch), checkpoint=checkpoint
    )

    # Then it trained only epochs 2-4 and ended with the uninterrupted run's weights and history
    assert reported == [2, 3, 4]
    assert resumed.epochs_run == whole.epochs_run == 4
    assert resumed.best_epoch == whole.best_epoch
    assert resumed.best_metrics == pytest.approx(whole.best_metrics)
    assert [r.train_loss for r in resumed.history] == pytest.approx([r.train_loss for r in whole.history])
    for name, value in model.state_dict().items():
        assert torch.allclose(value, reference[name], atol=1e-6), name
