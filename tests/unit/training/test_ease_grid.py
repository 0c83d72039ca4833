"""EASE's L2 grid on one Gram matrix and its exact export at full rank."""

from __future__ import annotations

import numpy as np
import torch

from tests.unit.training.factories import (
    CPU,
    WEIGHT_LEVELS,
    blank_catalogue,
    community_pairs,
    validation_split,
)
from training_jobs.candidate_fit import EASE_SCREEN_FACTOR_INDEX, SCREENED, ease_l2_values, train_candidate
from training_jobs.candidate_plan import (
    EASE_L2_FACTORS,
    CandidateSpec,
    ease_grid,
)
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph, build_graph
from training_jobs.models.ease import EASEParams, ease_weights, fit_ease, gram_matrix


def _graph(n_users: int = 50, n_items: int = 24, n_pairs: int = 500) -> InteractionGraph:
    """Three communities, each unique pair weighted from ``WEIGHT_LEVELS``."""
    rng = np.random.default_rng(4)
    graph = build_graph(
        *community_pairs(rng, n_users, n_items, n_pairs, groups=3, zipf=1.4), n_users, n_items
    )
    weights = rng.choice(WEIGHT_LEVELS, graph.n_edges)
    return InteractionGraph(graph.n_users, graph.n_items, graph.users, graph.items, weights)


def test_full_rank_export_scores_exactly_x_b() -> None:
    # Given EASE at a rank covering every item
    graph = _graph()
    model = fit_ease(graph, EASEParams(l2=3.0, rank=graph.n_items))
    tables = model.export_tables()
    weights = ease_weights(graph, 3.0)
    # Then the fold-in rows are B's rows and the item vectors the identity (no decomposition)
    np.testing.assert_array_equal(tables.foldin_table.numpy(), weights)
    np.testing.assert_array_equal(tables.item_vectors.numpy(), np.eye(graph.n_items, dtype=np.float32))
    # And a trained user's scores are their weighted mean history times B
    x = np.zeros((graph.n_users, graph.n_items), dtype=np.float32)
    x[graph.users, graph.items] = graph.weights
    expected = (x @ weights) / np.maximum(x.sum(axis=1, keepdims=True), 1e-12)
    scores = model.score_users(torch.arange(graph.n_users)).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_a_shared_gram_gives_the_same_weights() -> None:
    graph = _graph()
    gram = gram_matrix(graph)
    before = gram.copy()
    np.testing.assert_array_equal(ease_weights(graph, 5.0, gram), ease_weights(graph, 5.0))
    np.testing.assert_array_equal(gram, before)  # the shared matrix is not overwritten by the inverse


def test_the_plan_screens_weighted_and_binary_x_over_the_l2_grid() -> None:
    graph = _graph()
    (screened,) = ease_grid(TrainingConfig(ease_rank=8), graph)
    assert screened.params["binary"] == SCREENED and screened.params["rank"] == 8
    mass = float(graph.weights.sum()) / graph.n_items
    np.testing.assert_allclose(
        ease_l2_values(screened, graph), [mass * f for f in EASE_L2_FACTORS], rtol=1e-3
    )
    # a pinned L2 is one fit per variant: two specs, nothing to screen
    pinned = ease_grid(TrainingConfig(ease_l2=7.0, ease_rank=1000), graph)
    assert [spec.params["binary"] for spec in pinned] == [False, True]
    assert [ease_l2_values(spec, graph) for spec in pinned] == [[7.0], [7.0]]
    assert pinned[0].params["rank"] == graph.n_items
    # pair weights that are all alike make the binary X the same model: one spec
    alike = InteractionGraph(graph.n_users, graph.n_items, graph.users, graph.items, np.ones(graph.n_edges))
    assert [spec.params["binary"] for spec in ease_grid(TrainingConfig(), alike)] == [False]


def test_one_ease_spec_yields_a_scored_model_per_l2_value() -> None:
    fit, holdout = validation_split(_graph())
    config = TrainingConfig(model_type="ease", cpu_threads=1, ease_rank=6)
    for binary in (False, True):
        spec = CandidateSpec("ease", {"l2_factors": "8/32/128/512", "rank": 6, "binary": binary})
        fitted = train_candidate(spec, fit, config, blank_catalogue(fit.n_items), CPU, holdout)
        assert [f.spec.params["l2"] for f in fitted] == ease_l2_values(spec, _binary(fit) if binary else fit)
        assert all(f.spec.params["rank"] == 6 and f.spec.params["binary"] == binary for f in fitted)
        assert all("l2_factors" not in f.spec.params for f in fitted)
        assert all(0.0 <= f.metrics["ndcg_10"] <= 1.0 for f in fitted)
        assert len({round(f.metrics["ndcg_10"], 6) for f in fitted}) > 1  # the L2 value matters here


def test_the_screened_spec_sweeps_the_grid_only_on_the_better_x() -> None:
    # Given the screened spec of the plan
    fit, holdout = validation_split(_graph())
    config = TrainingConfig(model_type="ease", cpu_threads=1, ease_rank=6)
    (spec,) = ease_grid(config, fit)
    fitted = train_candidate(spec, fit, config, blank_catalogue(fit.n_items), CPU, holdout)

    # Then both variants are fitted at the screening point, and the whole grid only for the better one
    weighted, binary, *rest = fitted
    point = EASE_SCREEN_FACTOR_INDEX
    assert weighted.spec.params["binary"] is False and binary.spec.params["binary"] is True
    assert weighted.spec.params["l2"] == ease_l2_values(spec, fit)[point]
    assert binary.spec.params["l2"] == ease_l2_values(spec, _binary(fit))[point]
    winner = binary if binary.metrics["ndcg_10"] > weighted.metrics["ndcg_10"] else weighted
    chosen = bool(winner.spec.params["binary"])
    grid = ease_l2_values(spec, _binary(fit) if chosen else fit)
    assert [f.spec.params["l2"] for f in rest] == grid[:point] + grid[point + 1 :]
    assert all(f.spec.params["binary"] is chosen for f in rest)
    assert len(fitted) == 2 + len(EASE_L2_FACTORS) - 1  # 5 fits, not 8
    # And each is the same model a pinned spec would fit
    again = CandidateSpec("ease", {"l2": rest[0].spec.params["l2"], "rank": 6, "binary": chosen})
    (pinned,) = train_candidate(again, fit, config, blank_catalogue(fit.n_items), CPU, holdout)
    assert pinned.metrics == rest[0].metrics


def test_binary_ease_ignores_the_pair_weights() -> None:
    graph = _graph()
    config = TrainingConfig(model_type="ease", cpu_threads=1)
    spec = CandidateSpec("ease", {"l2": 5.0, "rank": graph.n_items, "binary": True})
    (fitted,) = train_candidate(spec, graph, config, blank_catalogue(graph.n_items), CPU)
    expected = fit_ease(_binary(graph), EASEParams(l2=5.0, rank=graph.n_items))
    users = torch.arange(graph.n_users)
    np.testing.assert_allclose(fitted.model.score_users(users), expected.score_users(users), atol=1e-6)
    weighted = fit_ease(graph, EASEParams(l2=5.0, rank=graph.n_items))
    assert not torch.allclose(fitted.model.score_users(users), weighted.score_users(users), atol=1e-4)


def _binary(graph: InteractionGraph) -> InteractionGraph:
    return InteractionGraph(
        graph.n_users, graph.n_items, graph.users, graph.items, np.ones_like(graph.weights)
    )
