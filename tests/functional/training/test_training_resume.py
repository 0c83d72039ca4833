"""A training job retried after a spot reclaim resumes from its checkpoints; the selection's time budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.training.test_training_job import FAST, TENANT, Stack, _argv, stack
from tests.unit.training.factories import make_interactions, make_items
from training_jobs import candidates, checkpoints
from training_jobs.candidate_plan import CandidateSpec
from training_jobs.storage import TrainingJobRepository
from training_jobs.train import handle_training_job

__all__ = ["stack"]  # the moto fixture, shared with the job's other functional tests

CONFIG = {"model_type": "als", "als_factors": 8, "als_iterations": 3, "device": "cpu", "cpu_threads": 1}


TRAIN_CANDIDATE = candidates.train_candidate


class SpotReclaimed(BaseException):  # noqa: N818 - a stand-in for the process being killed
    """Raised inside a candidate's fit: the attempt ends there, like a reclaimed instance."""


def _spy_fits(monkeypatch: pytest.MonkeyPatch, reclaim_at: int | None = None) -> list[tuple[str, bool]]:
    """Record every fit as (spec label, scored on a hold-out); optionally die at the ``reclaim_at``-th."""
    fits: list[tuple[str, bool]] = []
    original: Callable[..., Any] = TRAIN_CANDIDATE  # not an earlier spy: each list sees its own run

    def train_candidate(spec: CandidateSpec, *args: Any, **kwargs: Any) -> Any:
        holdout = args[4] if len(args) > 4 else kwargs.get("holdout")
        fits.append((spec.label, holdout is not None or kwargs.get("evaluator") is not None))
        if reclaim_at is not None and len(fits) == reclaim_at:
            raise SpotReclaimed(spec.label)
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(candidates, "train_candidate", train_candidate)
    return fits


def _checkpoints(stack: Stack, job_id: str) -> list[str]:
    prefix = f"datasets/{TENANT}/{job_id}/checkpoints/"
    listing = stack.s3.list_objects_v2(Bucket="embedrec-data-test", Prefix=prefix)
    return sorted(item["Key"][len(prefix) :] for item in listing.get("Contents", []))


def _outcomes(tried: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str, dict[str, float]]]:
    """What each candidate was and reached (its seconds and memory differ from run to run)."""
    return [(c["model_type"], c["params"], c["status"], c["metrics"]) for c in tried]


def test_a_retried_job_fits_only_the_candidates_not_finished(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose first attempt is reclaimed while fitting its third candidate
    interactions, items = make_interactions(150, 60, 2500, seed=7), make_items(64, 8)
    uri = stack.put_snapshot("resumed", interactions, items)
    first = _spy_fits(monkeypatch, reclaim_at=3)
    with pytest.raises(SpotReclaimed):
        handle_training_job(_argv("resumed", uri, CONFIG, "als_resumed"))
    finished = [label for label, _ in first[:2]]
    assert _checkpoints(stack, "resumed")[-2:] == ["candidate-000.json", "candidate-001.json"]
    assert stack.artifact_keys() == []

    # When Batch retries it (same arguments), and another job runs the same data without interruption
    second = _spy_fits(monkeypatch)
    assert handle_training_job(_argv("resumed", uri, CONFIG, "als_resumed")) == 0
    fresh_uri = stack.put_snapshot("fresh", interactions, items)
    fresh = _spy_fits(monkeypatch)
    assert handle_training_job(_argv("fresh", fresh_uri, CONFIG, "als_fresh")) == 0

    # Then the retry fitted only the candidates the first attempt had not finished (and the refit once)
    planned = [label for label, scored in fresh if scored]
    assert len(planned) >= 3 and planned[:2] == finished
    assert [label for label, scored in second if scored] == planned[2:]
    assert sum(not scored for _, scored in second) == 1
    # and chose and published what the uninterrupted job did, with every candidate in its manifest
    record, fresh_record = stack.record("resumed"), stack.record("fresh")
    assert record["status"] == "completed"
    assert record["metrics"]["selected_model"] == fresh_record["metrics"]["selected_model"]
    assert float(record["metrics"]["val_ndcg_10"]) == pytest.approx(
        float(fresh_record["metrics"]["val_ndcg_10"])
    )
    assert int(record["metrics"]["candidates_resumed"]) == 2
    assert int(fresh_record["metrics"]["candidates_resumed"]) == 0
    manifest = json.loads(stack.read(f"models/{TENANT}/als_resumed/manifest.json"))
    fresh_manifest = json.loads(stack.read(f"models/{TENANT}/als_fresh/manifest.json"))
    selection = manifest["training"]["selection"]
    assert selection["resumed"] == 2
    assert _outcomes(selection["candidates"]) == _outcomes(
        fresh_manifest["training"]["selection"]["candidates"]
    )
    assert selection["chosen"] == fresh_manifest["training"]["selection"]["chosen"]


def test_the_selection_budget_stops_adding_candidates_and_publishes_the_best_finished(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose selection budget is spent by its first candidate
    uri = stack.put_snapshot("budget", make_interactions(150, 60, 2500, seed=7), make_items(64, 8))
    fits = _spy_fits(monkeypatch)

    # When it runs
    assert handle_training_job(_argv("budget", uri, {**CONFIG, "selection_budget_s": 0.001}, "als_b")) == 0

    # Then one candidate was fitted on the selection split, the others were skipped and say so, and the
    # finished one was refitted and published
    selection_fits = [label for label, scored in fits if scored]
    assert len(selection_fits) == 1
    metrics = stack.record("budget")["metrics"]
    assert metrics["selection_stop"] == "time budget"
    assert int(metrics["candidates_skipped"]) >= 2
    manifest = json.loads(stack.read(f"models/{TENANT}/als_b/manifest.json"))
    selection = manifest["training"]["selection"]
    assert len(selection["skipped"]) == int(metrics["candidates_skipped"])
    chosen = CandidateSpec(selection["chosen"]["model_type"], selection["chosen"]["params"])
    assert [label for label, scored in fits if not scored] == [chosen.label]
    assert chosen.label.startswith(selection_fits[0].split(",factors")[0])
    assert all(
        candidate["params"]["regularization"] == selection["chosen"]["params"]["regularization"]
        for candidate in selection["candidates"]
    )


def test_a_retried_gradient_candidate_resumes_after_its_last_saved_epoch(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a LightGCN job that saves its state after every epoch and is reclaimed after its 2nd epoch
    monkeypatch.setattr(checkpoints, "EPOCH_CHECKPOINT_EVERY_S", 0.0)
    uri = stack.put_snapshot("epochs", make_interactions(150, 60, 2500, seed=7), make_items(64, 8))
    config = {**FAST, "model_type": "lightgcn", "epochs": 4, "patience": 0, "device": "cpu"}
    epochs: list[int] = []
    original = TrainingJobRepository.record_epoch

    def record_epoch(self: TrainingJobRepository, epoch: int, total: int, *args: Any) -> None:
        original(self, epoch, total, *args)
        epochs.append(epoch)
        if len(epochs) == 2 and reclaim:
            raise SpotReclaimed(f"after epoch {epoch}")

    monkeypatch.setattr(TrainingJobRepository, "record_epoch", record_epoch)
    reclaim = True
    with pytest.raises(SpotReclaimed):
        handle_training_job(_argv("epochs", uri, config, "lightgcn_epochs"))
    assert "epochs-000.pt" in _checkpoints(stack, "epochs")
    first = list(epochs)

    # When Batch retries it
    reclaim, epochs[:] = False, []
    assert handle_training_job(_argv("epochs", uri, config, "lightgcn_epochs")) == 0

    # Then the selection run went on after epoch 1 (the last one saved before the reclaim took epoch 2's
    # save with it) instead of starting over, and the refit ran its 4 epochs once
    assert first == [1, 2]
    selection = epochs[:3]
    assert selection == [2, 3, 4]
    manifest = json.loads(stack.read(f"models/{TENANT}/lightgcn_epochs/manifest.json"))
    assert manifest["training"]["selection"]["training"]["epochs_run"] == 4
    assert manifest["training"]["refit"]["epochs"] == 4
    assert stack.record("epochs")["status"] == "completed"
