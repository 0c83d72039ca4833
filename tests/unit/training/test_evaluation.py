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


def _dense_reference(scores: np.ndarray, train_mask: np.ndarray, truth: np.ndarray, k: int) -> float:
    """NDCG@k over users with a held-out item, from whole dense matrices (the unchunked definition)."""
    masked = np.where(train_mask, -np.inf, scores)
    total, users = 0.0, 0
    for row in range(scores.shape[0]):
        if not truth[row].any():
            continue
        top = np.argsort(-masked[row], kind="stable")[:k]
        dcg = sum(1 / math.log2(rank + 2) for rank, item in enumerate(top) if truth[row, item])
        idcg = sum(1 / math.log2(rank + 2) for rank in range(min(int(truth[row].sum()), k)))
        total, users = total + dcg / idcg, users + 1
    return total / users


def test_chunked_scoring_equals_the_dense_definition_and_leaves_shared_scores_alone() -> None:
    # Given 40 users x 30 items with random training pairs and hold-outs, and distinct random scores
    rng = np.random.default_rng(5)
    n_users, n_items = 40, 30
    train_u, train_i = rng.integers(0, n_users, 200), rng.integers(0, n_items, 200)
    hold_u, hold_i = rng.integers(0, n_users, 60), rng.integers(0, n_items, 60)
    train = build_graph(train_u, train_i, n_users, n_items)
    scores = torch.as_tensor(rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float32))
    train_mask = np.zeros((n_users, n_items), dtype=bool)
    train_mask[train.users, train.items] = True
    truth = np.zeros((n_users, n_items), dtype=bool)
    truth[hold_u, hold_i] = True
    truth &= ~train_mask
    # When it is scored 7 cells at a time (a chunk of 1 user x 30 items would not fit: 1 user per chunk)
    # and with the whole table at once, the score function handing out views of one shared matrix
    chunked = Evaluator(train, hold_u, hold_i, "cpu", ks=(10,), max_cells=7)
    whole = Evaluator(train, hold_u, hold_i, "cpu", ks=(10,))
    before = scores.clone()
    small = chunked.evaluate(
        lambda users: scores[users[0] : users[-1] + 1] if users.numel() == 1 else scores[users]
    )
    big = whole.evaluate(lambda users: scores[users])
    # Then both equal the dense definition, and the shared matrix was not written to
    assert chunked.batch_size == 1 and whole.batch_size == 2048
    assert small["ndcg_10"] == pytest.approx(_dense_reference(scores.numpy(), train_mask, truth, 10))
    assert big == pytest.approx(small)
    assert torch.equal(scores, before)
    assert chunked.n_eval_users == int(truth.any(axis=1).sum())
