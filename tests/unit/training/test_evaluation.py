"""Full-ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training_jobs.data import build_graph
from training_jobs.evaluation import Evaluator, popularity_metrics


def _fixed_scores(table: list[list[float]]):  # noqa: ANN202 - test helper
    scores = torch.tensor(table)

    def score(users: torch.Tensor) -> torch.Tensor:
        return scores[users.cpu()]

    return score


def test_metrics_match_hand_computation() -> None:
    # Given 2 users, 12 items; user 0 trained on item 0, held-out items {1, 5}; user 1 held-out {2}
    train = build_graph(np.array([0, 1]), np.array([0, 3]), 2, 12)
    evaluator = Evaluator(train, np.array([0, 0, 1]), np.array([1, 5, 2]), "cpu", ks=(1, 2, 10))
    # user 0 ranks (item 0 masked) 1, 2, 5, ...; user 1 ranks (item 3 masked) 4, 2, ...
    scores = [
        [100.0, 11, 10, 0, 0, 9, 0, 0, 0, 0, 0, 0],
        [0.0, 0, 10, 100, 11, 0, 0, 0, 0, 0, 0, 0],
    ]
    metrics = evaluator.evaluate(_fixed_scores(scores))
    # @1: user0 hit (1/2 recall), user1 miss
    assert metrics["recall_1"] == pytest.approx((0.5 + 0.0) / 2)
    assert metrics["precision_1"] == pytest.approx((1.0 + 0.0) / 2)
    assert metrics["ndcg_1"] == pytest.approx((1.0 + 0.0) / 2)
    # @2: user0 hits rank0 only; user1 hits rank1
    idcg_u0 = 1 + 1 / math.log2(3)
    assert metrics["recall_2"] == pytest.approx((0.5 + 1.0) / 2)
    assert metrics["ndcg_2"] == pytest.approx((1 / idcg_u0 + (1 / math.log2(3)) / 1.0) / 2)
    assert metrics["precision_2"] == pytest.approx((0.5 + 0.5) / 2)
    # @10: user0 hits ranks 0 and 2
    assert metrics["recall_10"] == pytest.approx(1.0)
    assert metrics["ndcg_10"] == pytest.approx(((1 + 1 / math.log2(4)) / idcg_u0 + 1 / math.log2(3)) / 2)
    assert metrics["precision_10"] == pytest.approx((0.2 + 0.1) / 2)


def test_users_without_holdout_are_not_averaged_and_train_pairs_are_not_hits() -> None:
    train = build_graph(np.array([0, 1, 2]), np.array([0, 0, 1]), 3, 4)
    # user 1's only held-out item is also a training item: it cannot be evaluated
    evaluator = Evaluator(train, np.array([0, 1]), np.array([2, 0]), "cpu", ks=(2,), batch_size=1)
    assert evaluator.n_eval_users == 1
    metrics = evaluator.evaluate(_fixed_scores([[0, 0, 5, 1]] * 3))
    assert metrics["recall_2"] == 1.0 and metrics["ndcg_2"] == 1.0


def test_popularity_baseline_ranks_by_training_counts() -> None:
    train = build_graph(np.array([0, 1, 2, 2, 1]), np.array([3, 3, 3, 1, 1]), 4, 5)
    evaluator = Evaluator(train, np.array([3]), np.array([1]), "cpu", ks=(1, 2))
    metrics = popularity_metrics(evaluator, train)
    # user 3 gets 3 then 1
    assert metrics["recall_1"] == 0.0
    assert metrics["recall_2"] == 1.0
