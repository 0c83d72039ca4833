"""The trainer's bounded-memory paths give the same numbers as the whole-array definitions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from training_jobs.columns import codes_in, compact_codes, sorted_distinct
from training_jobs.models import base
from training_jobs.models.base import weighted_row_sums


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
