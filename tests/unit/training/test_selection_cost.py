"""What bounds the cost of choosing a candidate: a fixed sample of validation users, a screened ALS grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.training.factories import CPU, blank_catalogue, two_communities, validation_split
from training_jobs.candidate_fit import (
    ALS_DAMPING_GRID,
    ALS_SCREEN_ITERATIONS,
    Holdout,
    UserSampleEvaluator,
    selection_evaluator,
    selection_users,
    train_candidate,
)
from training_jobs.candidate_plan import CandidateSpec
from training_jobs.candidates import screened_als, select_candidate
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph
from training_jobs.evaluation import Evaluator
from training_jobs.models.als import ALSParams, ALSRun, fit_als_factors


@pytest.fixture(scope="module")
def split() -> tuple[InteractionGraph, Holdout]:
    return validation_split(two_communities(80, 40, 1200))


def test_selection_users_are_a_fixed_capped_sample(split: tuple[InteractionGraph, Holdout]) -> None:
    _, holdout = split
    everyone = np.unique(holdout.users)
    # a cap above the count keeps every user
    np.testing.assert_array_equal(selection_users(holdout, everyone.size, seed=0), everyone)
    # a cap below it takes that many distinct held-out users, sorted, the same for the same seed
    sample = selection_users(holdout, 10, seed=0)
    assert sample.size == 10 and np.unique(sample).size == 10
    assert np.isin(sample, everyone).all() and (np.diff(sample) > 0).all()
    np.testing.assert_array_equal(sample, selection_users(holdout, 10, seed=0))
    assert not np.array_equal(sample, selection_users(holdout, 10, seed=1))


def test_user_sample_evaluator_scores_only_its_users_and_matches_the_full_metric(
    split: tuple[InteractionGraph, Holdout],
) -> None:
    # Given a scoring function that records which users it was asked for
    fit, holdout = split
    rng = np.random.default_rng(3)
    table = torch.as_tensor(rng.standard_normal((fit.n_users, fit.n_items)).astype(np.float32))
    asked: list[torch.Tensor] = []

    def score(users: torch.Tensor) -> torch.Tensor:
        asked.append(users.clone())
        return table[users]

    sample = selection_users(holdout, 12, seed=0)
    # When the sampled evaluator scores it
    metrics = UserSampleEvaluator(fit, holdout, sample, CPU).evaluate(score)
    # Then only the sampled users were scored, with their indices in the full graph
    np.testing.assert_array_equal(torch.cat(asked).numpy(), sample)
    # And the metrics are the full evaluator's over the sampled users' held-out pairs
    kept = np.isin(holdout.users, sample)
    reference = Evaluator(fit, holdout.users[kept], holdout.items[kept], CPU).evaluate(lambda u: table[u])
    assert metrics.keys() == reference.keys()
    for name, value in reference.items():
        assert metrics[name] == pytest.approx(value, abs=1e-9)


def test_selection_evaluator_samples_only_above_the_cap(split: tuple[InteractionGraph, Holdout]) -> None:
    fit, holdout = split
    n_users = np.unique(holdout.users).size
    assert type(selection_evaluator(fit, holdout, CPU, n_users, seed=0)) is Evaluator
    capped = selection_evaluator(fit, holdout, CPU, n_users - 1, seed=0)
    assert isinstance(capped, UserSampleEvaluator) and capped.n_eval_users == n_users - 1


def test_als_run_in_stages_ends_where_one_fit_ends(split: tuple[InteractionGraph, Holdout]) -> None:
    fit, _ = split
    params = ALSParams(factors=8, regularization=0.1, alpha=5.0, iterations=6, threads=1, seed=0)
    staged = ALSRun(fit, params)
    staged.advance(2)
    staged.advance(4)
    assert staged.iterations_done == 6
    once = fit_als_factors(fit, params)
    np.testing.assert_allclose(staged.factors().item_factors, once.item_factors, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(staged.factors().user_factors, once.user_factors, rtol=1e-4, atol=1e-5)


def _als(reg: float, alpha: float, iterations: int) -> CandidateSpec:
    params = {"factors": 8, "regularization": reg, "alpha": alpha, "iterations": iterations}
    return CandidateSpec("als", params)


def test_screened_als_grid_finishes_only_its_best_point(split: tuple[InteractionGraph, Holdout]) -> None:
    # Given a grid of three ALS points at more iterations than the screen gives
    fit, holdout = split
    full = ALS_SCREEN_ITERATIONS + 3
    grid = [_als(0.1, 5.0, full), _als(10.0, 1.0, full), _als(1.0, 20.0, full)]
    config = TrainingConfig(model_type="als", cpu_threads=1)
    assert screened_als(grid, config) == grid
    # When the job selects among them
    selection = select_candidate(fit, holdout, config, blank_catalogue(fit.n_items), CPU, specs=grid)
    # Then every point is scored after the screen's iterations, without damping
    screen = selection.results[: len(grid)]
    assert [dict(r.spec.params) for r in screen] == [
        {**spec.params, "iterations": ALS_SCREEN_ITERATIONS, "damping": 0.0} for spec in grid
    ]
    # And only the best screened point runs on to its full iterations, with the damping values scored
    finals = selection.results[len(grid) :]
    best = max(screen, key=lambda r: r.score)
    assert [r.spec.params["damping"] for r in finals] == list(ALS_DAMPING_GRID)
    for result in finals:
        assert result.spec.params["iterations"] == full
        assert {k: v for k, v in result.spec.params.items() if k not in ("iterations", "damping")} == {
            k: v for k, v in best.spec.params.items() if k not in ("iterations", "damping")
        }
    # And the finished model is the one a single full fit of that point gives (same metric)
    point = CandidateSpec("als", {**finals[0].spec.params})
    direct = train_candidate(point, fit, config, blank_catalogue(fit.n_items), CPU, holdout)[0]
    assert direct.metrics["ndcg_10"] == pytest.approx(finals[0].metrics["ndcg_10"], abs=1e-6)
    assert selection.metrics["ndcg_10"] == max(r.score for r in selection.results)


def test_a_single_or_short_als_spec_is_not_screened() -> None:
    config = TrainingConfig(model_type="als")
    assert screened_als([_als(0.1, 5.0, 15)], config) == []
    assert screened_als([_als(0.1, 5.0, ALS_SCREEN_ITERATIONS)] * 2, config) == []
    other = CandidateSpec("graph_filter", {"rank": 8})
    assert screened_als([other, _als(0.1, 5.0, 15), _als(1.0, 5.0, 15)], config) == [
        _als(0.1, 5.0, 15),
        _als(1.0, 5.0, 15),
    ]
