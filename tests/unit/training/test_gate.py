"""The promotion gate's parts: the 3-way time split, the leak guard, the holdout, the metrics, the rule."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
import torch

from training_jobs.active_model import trained_until_ms
from training_jobs.errors import DatasetError
from training_jobs.export import build_user_tower_onnx, user_vectors_reference
from training_jobs.gate import decide
from training_jobs.gate_holdout import GateHoldout, all_for_refit, build_holdout, judged_from, time_split
from training_jobs.gate_scoring import (
    FOLD_IN_HALF_LIFE_HOURS,
    ServedModel,
    holdout_metrics,
    popularity_on_holdout,
)
from training_jobs.models.base import UserTowerTables

HOUR = 3_600_000
T0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _events(rows: list[tuple[str, str, str, int]]) -> pa.Table:
    """(user, item, type, hours after T0) rows in the snapshot's columns."""
    return pa.table(
        {
            "user_id": [row[0] for row in rows],
            "item_id": [row[1] for row in rows],
            "interaction_type": [row[2] for row in rows],
            "timestamp": pa.array([T0 + row[3] * HOUR for row in rows], pa.timestamp("ms", tz="UTC")),
        }
    )


def _spread(n: int) -> pa.Table:
    return _events([(f"u{i % 5}", f"i{i % 7}", "click", i) for i in range(n)])


def test_time_split_cuts_gate_then_selection_from_the_newest_events() -> None:
    # Given 100 events one hour apart (and a stale is_validation column from the snapshot)
    table = _spread(100).append_column("is_validation", pa.array([True] * 100))

    split = time_split(table, gate_fraction=0.15, selection_fraction=0.2)

    # Then the newest 15 are the gate, the newest 17 of the other 85 the selection, the rest fit
    assert split.gate_start_ms == T0 + 85 * HOUR and split.gate_events == 15
    assert split.selection_start_ms == T0 + 68 * HOUR and split.selection_events == 17
    training = split.training_window(table)
    assert split.fit_events == 68 and training.num_rows == 85
    flags = training["is_validation"].to_pylist()
    assert flags == [False] * 68 + [True] * 17
    assert split.describe()["gate_start"] == "2025-01-04T13:00:00.000Z"


def test_time_split_keeps_tied_events_on_one_side() -> None:
    # Given the newest 30 events at the same instant: a 15 % gate takes all of them
    rows = [("u1", "i1", "view", h) for h in range(70)] + [("u2", "i2", "view", 70)] * 30
    table = _events(rows)
    split = time_split(table, gate_fraction=0.15, selection_fraction=0.2)
    assert split.gate_events == 30 and split.training_window(table).num_rows == 70


def test_time_split_refuses_a_window_at_one_instant() -> None:
    with pytest.raises(DatasetError, match="no history before the gate holdout"):
        time_split(_events([("u1", "i1", "view", 0)] * 10), gate_fraction=0.15, selection_fraction=0.2)


def test_refit_holds_nothing_out() -> None:
    table = all_for_refit(_spread(10).append_column("is_validation", pa.array([True] * 10)))
    assert table["is_validation"].to_pylist() == [False] * 10


def test_leak_guard_judges_only_events_after_the_active_models_data() -> None:
    gate = T0 + 100 * HOUR
    assert judged_from(gate, None) == gate  # no active model: the whole gate holdout
    assert judged_from(gate, gate - HOUR) == gate  # active data ends before the gate
    assert judged_from(gate, gate + 5 * HOUR) == gate + 5 * HOUR + 1  # it saw part of the gate period


def _holdout_table() -> pa.Table:
    return _events(
        [
            ("alice", "a", "click", 1),
            ("alice", "b", "purchase", 2),
            ("alice", "b", "view", 10),  # seen before the gate: not held out
            ("alice", "c", "click", 11),  # at the gate, before the active model's end
            ("alice", "d", "click", 13),  # after it: judged
            ("bob", "a", "view", 3),
            ("bob", "x", "view", 12),  # item outside the catalogue: ignored
            ("carol", "c", "click", 14),  # no history before the gate: not evaluated
        ]
    )


def test_holdout_uses_history_before_the_gate_and_truth_after_the_leak_guard() -> None:
    catalogue = np.array(["a", "b", "c", "d"])
    gate = T0 + 10 * HOUR

    whole = build_holdout(_holdout_table(), catalogue, gate, judged_from(gate, None))
    guarded = build_holdout(_holdout_table(), catalogue, gate, judged_from(gate, T0 + 12 * HOUR))

    assert whole.user_ids.tolist() == ["alice"]  # bob's only new item is unknown, carol has no history
    assert whole.truth_items.tolist() == ["c", "d"]
    assert whole.context_items.tolist() == ["b", "a"]  # newest first
    assert whole.context_types.tolist() == [3, 1]
    assert guarded.truth_items.tolist() == ["d"] and guarded.judged_from_ms == T0 + 12 * HOUR + 1
    assert guarded.describe()["judged_events"] == 2  # alice's d and carol's c


def test_a_large_holdout_is_judged_on_a_seeded_sample_of_its_users() -> None:
    # Given 50 shoppers, each with one item before the gate and one new item after it
    rows = [(f"u{n:02d}", "a", "view", 1) for n in range(50)] + [
        (f"u{n:02d}", "b", "click", 12) for n in range(50)
    ]
    gate = T0 + 10 * HOUR

    whole = build_holdout(_events(rows), np.array(["a", "b"]), gate, gate)
    sampled = build_holdout(_events(rows), np.array(["a", "b"]), gate, gate, max_users=20, seed=3)
    again = build_holdout(_events(rows), np.array(["a", "b"]), gate, gate, max_users=20, seed=3)

    # Then 20 of them are judged, with their own history and truth, the same 20 for the same seed
    assert whole.n_users == 50 and sampled.n_users == 20 and sampled.describe()["eligible_users"] == 50
    assert set(sampled.user_ids) < set(whole.user_ids)
    assert sampled.user_ids.tolist() == again.user_ids.tolist()
    assert sampled.truth_items.tolist() == ["b"] * 20 and sampled.context_items.tolist() == ["a"] * 20
    assert sampled.truth_indptr.tolist() == list(range(21)) == sampled.context_indptr.tolist()


def _holdout(context: list[list[str]], truth: list[list[str]]) -> GateHoldout:
    def csr(groups: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        indptr = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
        return indptr, np.array([item for g in groups for item in g], dtype=str)

    c_ptr, c_items = csr(context)
    t_ptr, t_items = csr(truth)
    return GateHoldout(
        gate_start_ms=T0,
        judged_from_ms=T0,
        user_ids=np.array([f"u{i}" for i in range(len(context))]),
        context_indptr=c_ptr,
        context_items=c_items,
        context_types=np.full(c_items.size, 1, np.int8),
        context_ms=np.full(c_items.size, T0 - HOUR, np.int64),
        truth_indptr=t_ptr,
        truth_items=t_items,
        judged_events=int(t_items.size),
        eligible_users=len(context),
    )


def test_metrics_mask_history_and_count_unknown_truth_as_misses() -> None:
    # Given items ranked a > b > c > d for everyone
    items = np.array(["a", "b", "c", "d"])
    row = np.array([4.0, 3.0, 2.0, 1.0], dtype=np.float32)
    holdout = _holdout(context=[["a"], []], truth=[["c"], ["b", "zzz"]])

    metrics = holdout_metrics(items, lambda start, stop: np.tile(row, (stop - start, 1)), holdout, ks=(2,))

    # Then u0 (a masked) finds c at rank 2; u1 finds b at rank 2 and can never find the unknown zzz
    dcg = 1 / math.log2(3)
    ndcg_u0 = dcg / 1.0
    ndcg_u1 = dcg / (1.0 + 1 / math.log2(3))
    assert metrics["recall_2"] == pytest.approx((1.0 + 0.5) / 2, abs=1e-6)
    assert metrics["precision_2"] == pytest.approx((0.5 + 0.5) / 2, abs=1e-6)
    assert metrics["ndcg_2"] == pytest.approx((ndcg_u0 + ndcg_u1) / 2, abs=1e-6)


def test_popularity_counts_users_before_the_gate() -> None:
    table = _events(
        [("u1", "a", "view", 0), ("u1", "a", "view", 1), ("u2", "b", "view", 2), ("u3", "b", "view", 3)]
        + [("u1", "c", "view", 20), ("u2", "c", "view", 21), ("u3", "c", "view", 22)]
    )
    holdout = _holdout(context=[["a"]], truth=[["b"]])
    holdout = GateHoldout(**{**holdout.__dict__, "gate_start_ms": T0 + 10 * HOUR})

    # b (2 users) outranks a (1 user, repeated); c only became popular after the gate
    metrics = popularity_on_holdout(table, np.array(["a", "b", "c"]), holdout)
    assert metrics["recall_10"] == 1.0 and metrics["ndcg_10"] == 1.0


def test_decision_needs_popularity_the_floor_and_the_active_model() -> None:
    popularity = {"ndcg_10": 0.10}

    def verdict(score: float, active: float | None = None, floor: float = 0.0) -> tuple[bool, str]:
        decision = decide(
            {"ndcg_10": score},
            popularity,
            active=None if active is None else {"ndcg_10": active},
            active_version="lightgcn_v1",
            quality_floor=floor,
        )
        return decision.promote, decision.reason

    assert verdict(0.20) == (True, "gate NDCG@10 0.2000 beats popularity's 0.1000 (no active model to beat)")
    assert verdict(0.10) == (False, "gate NDCG@10 0.1000 does not beat popularity's 0.1000")
    assert verdict(0.08, active=0.05) == (False, "gate NDCG@10 0.0800 does not beat popularity's 0.1000")
    assert verdict(0.20, floor=0.25)[1] == "gate NDCG@10 0.2000 is below the quality floor 0.2500"
    assert verdict(0.20, active=0.20) == (
        False,
        "gate NDCG@10 0.2000 does not beat the active lightgcn_v1's 0.2000",
    )
    promoted, reason = verdict(0.30, active=0.20)
    assert promoted and "beats the active lightgcn_v1's 0.2000" in reason


def test_trained_until_reads_the_data_window_then_created_at() -> None:
    assert trained_until_ms({"data_window": {"end": "2025-01-01T00:00:00+00:00"}}) == T0
    assert trained_until_ms({"data_window": {}, "created_at": "2025-01-01T01:00:00Z"}) == T0 + HOUR
    assert trained_until_ms({}) is None


def _tables() -> UserTowerTables:
    generator = torch.Generator().manual_seed(3)
    return UserTowerTables(
        user_table=torch.randn(2, 4, generator=generator),
        foldin_table=torch.randn(3, 4, generator=generator),
        item_vectors=torch.randn(3, 4, generator=generator),
        foldin_scale=1.5,
        blend=0.4,
    )


def test_served_model_folds_in_like_serving() -> None:
    # Given a model trained on u0 until T0 - 2h, and a holdout where u0 and a stranger have history
    tables = _tables()
    model = ServedModel(
        user_tower=build_user_tower_onnx(tables),
        item_ids=np.array(["a", "b", "c"]),
        item_vectors=tables.item_vectors.numpy(),
        user_ids=np.array(["u0", "u1"]),
        trained_until_ms=T0 - 2 * HOUR,
    )
    holdout = GateHoldout(
        gate_start_ms=T0,
        judged_from_ms=T0,
        user_ids=np.array(["u0", "stranger"]),
        context_indptr=np.array([0, 2, 5]),
        context_items=np.array(["b", "a", "a", "c", "zzz"]),
        context_types=np.array([3, 0, 0, 1, 0], np.int8),
        context_ms=np.array([T0 - HOUR, T0 - 3 * HOUR, T0 - HOUR, T0 - 24 * HOUR, T0 - 25 * HOUR]),
        truth_indptr=np.array([0, 1, 2]),
        truth_items=np.array(["c", "b"]),
        judged_events=2,
        eligible_users=2,
    )

    vectors = model.user_vectors(holdout)

    # Then u0 keeps its vector with only the purchase after its training folded in; the stranger folds
    # in its catalogue events (the unknown item dropped), weighted by type and halved per half-life of age
    half = FOLD_IN_HALF_LIFE_HOURS
    view_new, click_old = 1.0 * 0.5 ** (1 / half), 2.0 * 0.5 ** (24 / half)
    total = view_new + click_old
    expected = user_vectors_reference(
        tables,
        torch.tensor([0, -1]),
        torch.tensor([[1, -1], [0, 2]]),
        torch.tensor([[1.0, 0.0], [view_new / total, click_old / total]]),
    )
    np.testing.assert_allclose(vectors, expected.numpy(), rtol=1e-5, atol=1e-6)
