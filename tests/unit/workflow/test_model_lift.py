"""The model-quality alarm's metric: a promoted model's NDCG@10 over its popularity baseline's."""

from __future__ import annotations

import pytest

from functions.training.handlers import lift_over_popularity
from functions.training.store.model_registry import ModelVersion


def _version(**fields: object) -> ModelVersion:
    return ModelVersion.model_validate({"version": "lightgcn_v1", **fields})


def test_lift_is_the_ratio_to_the_popularity_baseline_on_the_same_split() -> None:
    # A healthy small tenant: absolute NDCG@10 is low, yet the model is twice as good as "most popular".
    assert lift_over_popularity(0.08, _version(baseline_metrics={"ndcg_10": 0.04})) == pytest.approx(2.0)
    assert lift_over_popularity(0.03, _version(baseline_metrics={"ndcg_10": 0.04})) == pytest.approx(0.75)


@pytest.mark.parametrize("version", [{}, {"baseline_metrics": {}}, {"baseline_metrics": {"ndcg_10": 0.0}}])
def test_no_lift_is_stated_without_a_baseline_score(version: dict[str, object]) -> None:
    assert lift_over_popularity(0.08, _version(**version)) is None


def test_the_gates_holdout_figures_are_preferred_when_the_job_measured_both() -> None:
    version = _version(
        baseline_metrics={"ndcg_10": 0.04},
        gate={"metric": "ndcg_10", "candidate": 0.06, "popularity": 0.05},
    )
    assert lift_over_popularity(0.08, version) == pytest.approx(1.2)
