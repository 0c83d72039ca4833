"""ALS and EASE fits, the candidate plan, selection with failures, and refit on other data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.unit.training.factories import CPU, blank_catalogue, two_communities, validation_split
from training_jobs.candidate_fit import (
    LIGHTGCN_CPU_STEPS_PER_EPOCH,
    Holdout,
    gradient_batch_size,
    lightgcn_init_for,
)
from training_jobs.candidate_plan import LIGHTGCN_CPU_MAX_EDGES, CandidateSpec, ease_fits_in_memory, plan
from training_jobs.candidates import refit, select_candidate
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph, build_graph
from training_jobs.errors import TrainingJobError
from training_jobs.evaluation import Evaluator, popularity_metrics
from training_jobs.export import user_vectors_reference
from training_jobs.models.als import ALSParams, fit_als
from training_jobs.models.ease import EASEParams, ease_weights, fit_ease, truncated_svd


@pytest.fixture(scope="module")
def split() -> tuple[InteractionGraph, Holdout]:
    return validation_split(two_communities())


@pytest.mark.parametrize("kind", ["als", "ease"])
def test_closed_form_models_beat_popularity_ontwo_communities(
    kind: str, split: tuple[InteractionGraph, Holdout]
) -> None:
    fit, holdout = split
    model = (
        fit_als(fit, ALSParams(factors=8, regularization=0.1, alpha=5.0, iterations=10, threads=1))
        if kind == "als"
        else fit_ease(fit, EASEParams(l2=5.0, rank=16))
    )
    evaluator = Evaluator(fit, holdout.users, holdout.items, CPU)
    metrics = evaluator.evaluate(model.score_users)
    assert metrics["recall_10"] > popularity_metrics(evaluator, fit)["recall_10"] + 0.1


def test_ease_weights_have_zero_diagonal_and_match_closed_form() -> None:
    graph = two_communities(20, 10, 120)
    weights = ease_weights(graph, 3.0)
    x = np.zeros((graph.n_users, graph.n_items))
    x[graph.users, graph.items] = graph.weights
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(graph.n_items))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(weights, expected, rtol=2e-3, atol=2e-4)


def test_truncated_svd_recovers_a_low_rank_matrix() -> None:
    rng = np.random.default_rng(1)
    matrix = (rng.standard_normal((50, 4)) @ rng.standard_normal((4, 50))).astype(np.float32)
    left, right = truncated_svd(matrix, 4, seed=0)
    np.testing.assert_allclose(left @ right.T, matrix, atol=1e-3)


def test_als_tower_folds_in_with_the_least_squares_rule(split: tuple[InteractionGraph, Holdout]) -> None:
    # Given an ALS model and a training user's history as an unknown user's recent items
    fit, _ = split
    model = fit_als(fit, ALSParams(factors=8, regularization=0.1, alpha=5.0, iterations=10, threads=1))
    tables = model.export_tables()
    user = 3
    items = torch.as_tensor(fit.items[fit.users == user]).unsqueeze(0)
    weights = torch.as_tensor(fit.weights[fit.users == user]).unsqueeze(0)
    folded = user_vectors_reference(tables, torch.tensor([-1]), items, weights)[0]
    # Then the fold-in points the same way as the trained vector (same community ranks first)
    trained = model.user_vectors[user]
    cosine = torch.nn.functional.cosine_similarity(folded, trained, dim=0)
    assert cosine.item() > 0.9
    # And the fold-in rows are the item factors through one precomputed solve
    assert tables.foldin_table.shape == tables.item_vectors.shape


def test_plan_follows_model_type_size_and_hardware(split: tuple[InteractionGraph, Holdout]) -> None:
    fit, _ = split
    auto = plan(TrainingConfig(), fit, CPU)
    assert {spec.model_type for spec in auto} == {"ease", "graph_filter", "als", "lightgcn"}
    assert {spec.model_type for spec in plan(TrainingConfig(model_type="als"), fit, CPU)} == {"als"}
    pinned = plan(
        TrainingConfig(model_type="als", als_factors=16, als_regularization=1, als_alpha=3), fit, CPU
    )
    assert [spec.params["factors"] for spec in pinned] == [16]
    assert [spec.model_type for spec in plan(TrainingConfig(model_type="two_tower"), fit, CPU)] == [
        "two_tower"
    ]
    # a catalogue too large for EASE's dense matrices is left out of auto and refused when asked for
    assert not ease_fits_in_memory(30_000)
    assert not ease_fits_in_memory(5_000, available_bytes=10**9)


def test_ease_is_refused_clearly_when_too_many_items() -> None:
    graph = build_graph(np.array([0, 1]), np.array([0, 25_000]), 2, 25_001)
    with pytest.raises(TrainingJobError, match="model_type 'ease' is offered up to"):
        plan(TrainingConfig(model_type="ease"), graph, CPU)


def test_selection_records_failures_and_keeps_the_best(split: tuple[InteractionGraph, Holdout]) -> None:
    # Given a grid with one candidate that cannot be fitted (EASE over a too-large catalogue)
    fit, holdout = split
    config = TrainingConfig(model_type="auto", epochs=3, als_iterations=5)
    specs = [
        CandidateSpec("als", {"factors": 8, "regularization": 0.1, "alpha": 5.0, "iterations": 5}),
        CandidateSpec("ease", {"l2": 5.0, "rank": 16}),
        CandidateSpec("als", {"factors": -1, "regularization": 0.1, "alpha": 5.0}),
    ]
    seen: list[str] = []
    selection = select_candidate(
        fit,
        holdout,
        config,
        blank_catalogue(fit.n_items),
        CPU,
        on_candidate=lambda r: seen.append(r.spec.label),
        specs=specs,
    )
    # Then the failed one is recorded with its reason and the best succeeded one is chosen
    assert len(selection.failures) == 1 and selection.failures[0].spec.params["factors"] == -1
    assert selection.failures[0].error
    assert selection.chosen.model_type in ("als", "ease")
    best = max(r.metrics["ndcg_10"] for r in selection.results if r.ok)
    assert selection.metrics["ndcg_10"] == best
    assert len(seen) == len(selection.results) == 5  # 3 damping values for the good ALS fit
    metrics = selection.job_metrics()
    assert "candidate_als_error" in metrics and metrics["selected_model"] == selection.chosen.label
    manifest = selection.to_manifest()
    assert [c["status"] for c in manifest["candidates"]].count("failed") == 1
    assert all(r.peak_memory_mb > 0 for r in selection.results)


def test_no_successful_candidate_fails_clearly(split: tuple[InteractionGraph, Holdout]) -> None:
    fit, holdout = split
    bad = [CandidateSpec("als", {"factors": -1, "regularization": 0.1, "alpha": 5.0})]
    with pytest.raises(TrainingJobError, match="no model candidate succeeded"):
        select_candidate(fit, holdout, TrainingConfig(), blank_catalogue(fit.n_items), CPU, specs=bad)


@pytest.mark.parametrize("model_type", ["lightgcn", "ease"])
def test_refit_trains_the_chosen_spec_on_all_data(
    model_type: str, split: tuple[InteractionGraph, Holdout]
) -> None:
    # Given a selection made on the fit split
    fit, holdout = split
    config = TrainingConfig(model_type=model_type, epochs=4, patience=0, embedding_dim=8, num_negatives=0)  # type: ignore[arg-type]
    catalogue = blank_catalogue(fit.n_items)
    selection = select_candidate(fit, holdout, config, catalogue, CPU)
    # When it is refit on every pair (fit + held out)
    everything = two_communities()
    fitted = refit(selection, everything, config, catalogue, CPU)
    # Then the same spec is trained on the larger graph, with a fixed amount of work
    assert fitted.spec == selection.chosen
    assert fitted.config.model_type == model_type
    assert fitted.model.n_users == everything.n_users
    if model_type == "lightgcn":
        assert fitted.training["epochs_run"] == selection.chosen.params["epochs"]


def test_lightgcn_batch_grows_on_cpu_only_when_not_pinned() -> None:
    graph = build_graph(
        np.arange(100_000) % 1000, np.arange(100_000) % 997, 1000, 997, np.ones(100_000, np.float32)
    )
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    # an epoch on CPU is at most LIGHTGCN_CPU_STEPS_PER_EPOCH full-graph propagations
    batch = gradient_batch_size(TrainingConfig(), graph, cpu, "lightgcn")
    assert batch == math.ceil(graph.n_edges / LIGHTGCN_CPU_STEPS_PER_EPOCH) > TrainingConfig().batch_size
    assert math.ceil(graph.n_edges / batch) <= LIGHTGCN_CPU_STEPS_PER_EPOCH
    # a pinned batch, a GPU, and the two-tower (no graph propagation) keep the configured batch
    assert gradient_batch_size(TrainingConfig(batch_size=512), graph, cpu, "lightgcn") == 512
    assert gradient_batch_size(TrainingConfig(), graph, gpu, "lightgcn") == TrainingConfig().batch_size
    assert gradient_batch_size(TrainingConfig(), graph, cpu, "two_tower") == TrainingConfig().batch_size
    # a small tenant keeps the configured batch (its epoch is already few steps)
    small = build_graph(np.arange(5000) % 50, np.arange(5000) % 40, 50, 40, np.ones(5000, np.float32))
    assert gradient_batch_size(TrainingConfig(), small, cpu, "lightgcn") == TrainingConfig().batch_size


def test_lightgcn_init_is_spectral_only_where_the_cpu_batch_grew() -> None:
    config = TrainingConfig()
    assert lightgcn_init_for(config, config.batch_size) == "normal"
    assert lightgcn_init_for(config, config.batch_size * 8) == "spectral"
    assert lightgcn_init_for(TrainingConfig(lightgcn_init="normal"), config.batch_size * 8) == "normal"
    assert lightgcn_init_for(TrainingConfig(lightgcn_init="spectral"), config.batch_size) == "spectral"


def test_auto_plans_lightgcn_on_cpu_up_to_the_edge_cap() -> None:
    def graph_of(n_edges: int) -> InteractionGraph:
        pairs = np.arange(n_edges)
        return build_graph(pairs % 40_000, pairs % 39_989, 40_000, 39_989, np.ones(n_edges, np.float32))

    def planned(graph: InteractionGraph, device: torch.device) -> set[str]:
        return {spec.model_type for spec in plan(TrainingConfig(), graph, device)}

    at_cap, above = graph_of(LIGHTGCN_CPU_MAX_EDGES), graph_of(LIGHTGCN_CPU_MAX_EDGES + 1)
    assert "lightgcn" in planned(at_cap, CPU)
    assert "lightgcn" not in planned(above, CPU)
    assert "lightgcn" in planned(above, torch.device("cuda"))
