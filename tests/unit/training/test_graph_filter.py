"""The graph filter: its singular basis, its scores against the closed form, the exported fold-in, the
plan's rank and memory rules, variants on one basis, and degenerate graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.training.factories import CPU, blank_catalogue, two_communities, validation_split
from training_jobs.candidate_fit import GRAPH_FILTER_BETAS, GRAPH_FILTER_RANK_SHARES, train_candidate
from training_jobs.candidate_plan import (
    GRAPH_FILTER_MAX_RANK,
    CandidateSpec,
    graph_filter_fits_in_memory,
    graph_filter_rank,
    plan,
)
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph, build_graph, weighted_matrix
from training_jobs.evaluation import Evaluator, popularity_metrics
from training_jobs.export import user_vectors_reference
from training_jobs.models.graph_filter import (
    GraphFilterParams,
    fit_graph_filter,
    normalized_matrix,
    top_right_singular,
)


def _dense(graph: InteractionGraph) -> np.ndarray:
    x = np.zeros((graph.n_users, graph.n_items))
    x[graph.users, graph.items] = graph.weights
    return x


def test_basis_matches_the_exact_svd_of_the_normalised_matrix() -> None:
    graph = two_communities(weighted=True)
    normalized, _ = normalized_matrix(weighted_matrix(graph))
    singular, vectors = top_right_singular(normalized, 6, power_iterations=4, seed=0)
    exact = np.linalg.svd(normalized.toarray().astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(singular, exact[:6], rtol=1e-3)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(6), atol=1e-4)
    # the largest singular value of a degree-normalised bipartite matrix is 1
    assert singular[0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(("beta", "power"), [(0.5, 0.0), (0.3, 0.0), (0.5, 2.0)])
def test_scores_equal_the_closed_form_filter(beta: float, power: float) -> None:
    # Given the exact filter x D^-beta V diag(s^power) V^T D^beta from a dense SVD
    graph = two_communities(weighted=True)
    x = _dense(graph)
    users_deg, items_deg = x.sum(axis=1), x.sum(axis=0)
    normalized = x / np.sqrt(np.where(users_deg > 0, users_deg, 1))[:, None]
    normalized /= np.sqrt(np.where(items_deg > 0, items_deg, 1))[None, :]
    _, s, vt = np.linalg.svd(normalized)
    rank = 8
    v = vt[:rank].T
    degrees = np.where(items_deg > 0, items_deg, 1.0)
    expected = x @ ((v * degrees[:, None] ** -beta * s[:rank] ** power) @ (v * degrees[:, None] ** beta).T)
    # When the model is fitted with that rank and beta
    model = fit_graph_filter(
        graph, GraphFilterParams(rank=rank, beta=beta, spectral_power=power, power_iterations=6)
    )
    scores = model.score_users(torch.arange(graph.n_users)).double().numpy()
    # Then its scores are the closed form's, divided by each user's weight total (the fold-in's mean)
    totals = x.sum(axis=1)
    np.testing.assert_allclose(scores * totals[:, None], expected, rtol=1e-3, atol=1e-4)


def test_tables_have_the_rank_as_their_width() -> None:
    graph = two_communities(weighted=True)
    tables = fit_graph_filter(graph, GraphFilterParams(rank=12)).export_tables()
    assert tables.user_table.shape == (graph.n_users, 12)
    assert tables.foldin_table.shape == tables.item_vectors.shape == (graph.n_items, 12)
    assert tables.blend == 1.0


def test_foldin_of_the_history_ranks_as_the_trained_vector() -> None:
    # Given a fitted filter and each user's training history passed as an unknown user's recent items
    graph = two_communities(weighted=True)
    model = fit_graph_filter(graph, GraphFilterParams(rank=10))
    tables = model.export_tables()
    for user in (0, 1, 7):
        mine = graph.users == user
        items = torch.as_tensor(graph.items[mine]).unsqueeze(0)
        weights = torch.as_tensor(graph.weights[mine]).unsqueeze(0)
        folded = user_vectors_reference(tables, torch.tensor([-1]), items, weights)[0]
        known = user_vectors_reference(tables, torch.tensor([user]), items, weights)[0]
        # Then the tower's vector is the trained one times the fold-in scale: the same scores, same ranking
        trained = model.user_vectors[user]
        torch.testing.assert_close(folded, trained * tables.foldin_scale, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(known, folded)
        ranked = torch.argsort(folded @ tables.item_vectors.T, descending=True)
        assert torch.equal(ranked, torch.argsort(model.score_users(torch.tensor([user]))[0], descending=True))


def test_filter_beats_popularity_ontwo_communities(weighted=True) -> None:
    fit, holdout = validation_split(two_communities(weighted=True))
    model = fit_graph_filter(fit, GraphFilterParams(rank=8))
    evaluator = Evaluator(fit, holdout.users, holdout.items, CPU)
    assert (
        evaluator.evaluate(model.score_users)["recall_10"]
        > popularity_metrics(evaluator, fit)["recall_10"] + 0.1
    )


def test_degenerate_graphs_give_finite_zero_or_smaller_models() -> None:
    # an empty graph: one zero column, zero vectors (serving falls back to popular items)
    empty = build_graph(np.zeros(0, np.int64), np.zeros(0, np.int64), 3, 4)
    tables = fit_graph_filter(empty, GraphFilterParams(rank=8)).export_tables()
    assert tables.foldin_table.shape == (4, 1)
    assert torch.count_nonzero(tables.user_table) == 0
    # a rank above the matrix's rank keeps only the vectors that exist
    single = build_graph(np.array([0, 0, 0]), np.array([0, 1, 2]), 2, 5)
    model = fit_graph_filter(single, GraphFilterParams(rank=16))
    tables = model.export_tables()
    assert tables.foldin_table.shape == (5, 1)
    # a user and items without pairs score nothing; every value is finite
    scores = model.score_users(torch.arange(2))
    assert torch.isfinite(scores).all()
    assert torch.count_nonzero(scores[1]) == 0
    assert torch.count_nonzero(tables.item_vectors[3:]) == 0


def test_plan_ranks_by_size_and_memory() -> None:
    graph = two_communities(weighted=True)
    specs = plan(TrainingConfig(model_type="graph_filter"), graph, CPU)
    assert specs == [CandidateSpec("graph_filter", {"rank": graph_filter_rank(graph.n_users, graph.n_items)})]
    assert "graph_filter" in {spec.model_type for spec in plan(TrainingConfig(), graph, CPU)}
    pinned = plan(
        TrainingConfig(model_type="graph_filter", graph_filter_rank=16, graph_filter_beta=0.3), graph, CPU
    )
    assert pinned == [CandidateSpec("graph_filter", {"rank": 16, "beta": 0.3})]
    # a mid-size tenant gets the full rank; a huge one a rank within the work budget
    assert graph_filter_rank(30_000, 40_000) == GRAPH_FILTER_MAX_RANK
    assert 4 <= graph_filter_rank(2_000_000, 1_000_000) < 300
    assert graph_filter_rank(10, 6) == 4
    assert not graph_filter_fits_in_memory(2_000_000, 1_000_000, 1024, available_bytes=8 * 2**30)
    assert graph_filter_fits_in_memory(30_000, 40_000, 1024, available_bytes=8 * 2**30)


def test_one_basis_scores_every_variant_and_refit_keeps_the_choice() -> None:
    fit, holdout = validation_split(two_communities(weighted=True))
    config = TrainingConfig(model_type="graph_filter")
    spec = CandidateSpec("graph_filter", {"rank": 12})
    variants = train_candidate(spec, fit, config, blank_catalogue(fit.n_items), CPU, holdout)
    expected = {(int(12 * share), beta) for share in GRAPH_FILTER_RANK_SHARES for beta in GRAPH_FILTER_BETAS}
    assert {(v.spec.params["rank"], v.spec.params["beta"]) for v in variants} == expected
    assert all(v.metrics["ndcg_10"] > 0 for v in variants)
    # a chosen variant (rank and beta pinned) refits as exactly that one model
    chosen = variants[0].spec
    (refitted,) = train_candidate(chosen, fit, config, blank_catalogue(fit.n_items), CPU)
    assert refitted.model.export_tables().foldin_table.shape[1] == chosen.params["rank"]
    assert refitted.config.model_type == "graph_filter"
