"""The promotion gate inside the training job, on moto: candidate vs the active model's own artifacts vs
popularity on one holdout, the leak guard, and the refit on the whole window."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pyarrow as pa

from tests.functional.training.test_training_job import FAST, TENANT, Stack, _argv, stack  # noqa: F401
from tests.unit.training.factories import make_interactions, make_items
from training_jobs.active_model import trained_until_ms
from training_jobs.columns import iso_ms, millis
from training_jobs.train import handle_training_job

GOOD = {**FAST, "model_type": "lightgcn", "epochs": 6}
#: An untrained model (no propagation, a learning rate too small to move the random start): ranks at random.
UNTRAINED = {**GOOD, "epochs": 1, "num_layers": 0, "learning_rate": 1e-7}


def _shop() -> tuple[pa.Table, pa.Table]:
    return make_interactions(200, 80, 5000, seed=3), make_items(80, 8)


def _older(table: pa.Table, share: float) -> pa.Table:
    stamps = millis(table)
    return table.filter(pa.array(stamps < np.quantile(stamps, share)))


def _with_newcomer(table: pa.Table) -> pa.Table:
    """Two events of a shopper first seen after every other event."""
    last = int(millis(table).max())
    extra = table.slice(0, 2)
    extra = extra.set_column(1, "user_id", pa.array(["newcomer", "newcomer"]))
    stamps = pa.array([last + 1000, last + 2000], pa.timestamp("ms", tz="UTC"))
    extra = extra.set_column(extra.column_names.index("timestamp"), "timestamp", stamps)
    return pa.concat_tables([table, extra])


def _train(
    stack: Stack,  # noqa: F811
    job_id: str,
    interactions: pa.Table,
    items: pa.Table,
    config: dict[str, Any],
    version: str,
    active: str | None = None,
) -> dict[str, Any]:
    uri = stack.put_snapshot(job_id, interactions, items)
    argv = _argv(job_id, uri, config, version)
    if active is not None:
        argv += ["--active-manifest-key", f"models/{TENANT}/{active}/manifest.json"]
    assert handle_training_job(argv) == 0, stack.record(job_id).get("error")
    return dict(json.loads(stack.read(f"models/{TENANT}/{version}/manifest.json")))


def test_candidate_and_active_are_judged_on_one_holdout_and_the_refit_has_the_newest_events(
    stack: Stack,  # noqa: F811
) -> None:
    # Given an active model trained on the older 70 % of a shop's history
    interactions, items = _shop()
    interactions = _with_newcomer(interactions)
    first = _train(stack, "first", _older(interactions, 0.7), items, GOOD, "lightgcn_v1")

    # When a job trains on the whole history with the active model named
    manifest = _train(stack, "second", interactions, items, GOOD, "lightgcn_v2", active="lightgcn_v1")

    # Then its gate measured candidate, active and popularity on one holdout newer than the active's data
    gate = manifest["gate"]
    assert gate["active"]["version"] == "lightgcn_v1"
    assert gate["active"]["trained_until"] == iso_ms(trained_until_ms(first) or 0)
    assert gate["holdout"]["judged_from"] == gate["split"]["gate_start"] > gate["active"]["trained_until"]
    assert gate["holdout"]["users"] > 0 and gate["split"]["gate_events"] > 0
    scores = {who: gate[who]["metrics"]["ndcg_10"] for who in ("candidate", "active", "popularity")}
    assert all(0 < value <= 1 for value in scores.values())
    assert gate["promote"] == (scores["candidate"] > max(scores["active"], scores["popularity"]))
    assert manifest["metrics"] == {name: gate["candidate"]["metrics"][name] for name in manifest["metrics"]}
    assert manifest["baseline_metrics"]["ndcg_10"] == scores["popularity"]
    record = stack.record("second")
    assert record["decision"] == gate["reason"]
    assert float(record["metrics"]["active_ndcg_10"]) == scores["active"]

    # And the published model is the refit on every interaction, newest included
    assert trained_until_ms(manifest) == int(millis(interactions).max())
    assert manifest["counts"]["interactions_used"] == interactions.num_rows
    assert manifest["counts"]["validation_pairs"] == 0
    with np.load(io.BytesIO(stack.read(f"models/{TENANT}/lightgcn_v2/lookup.npz"))) as lookup:
        assert "newcomer" in lookup["user_ids"].tolist()
    selection = manifest["training"]["selection"]
    assert selection["chosen"]["model_type"] == "lightgcn"
    assert manifest["training"]["refit"]["epochs"] == selection["chosen"]["params"]["epochs"]
    assert selection["counts"]["interactions_used"] < interactions.num_rows


def test_a_worse_candidate_is_not_promoted(stack: Stack) -> None:  # noqa: F811
    interactions, items = _shop()
    _train(stack, "good", _older(interactions, 0.7), items, GOOD, "lightgcn_v1")

    manifest = _train(stack, "worse", interactions, items, UNTRAINED, "lightgcn_v2", active="lightgcn_v1")

    gate = manifest["gate"]
    assert gate["promote"] is False
    assert gate["candidate"]["metrics"]["ndcg_10"] < gate["active"]["metrics"]["ndcg_10"]
    assert "does not beat" in gate["reason"]


def test_a_candidate_below_popularity_is_not_promoted_even_without_an_active_model(
    stack: Stack,  # noqa: F811
) -> None:
    # Given a shop whose shoppers all prefer the same few items (popularity is a strong answer)
    interactions, items = make_interactions(200, 80, 5000, n_segments=1, seed=3), make_items(80, 1)

    manifest = _train(stack, "untrained", interactions, items, UNTRAINED, "lightgcn_v1")

    gate = manifest["gate"]
    assert gate["active"] is None and gate["promote"] is False, gate
    assert gate["reason"].startswith("gate NDCG@10") and "does not beat popularity's" in gate["reason"]
    assert gate["candidate"]["metrics"]["ndcg_10"] <= gate["popularity"]["metrics"]["ndcg_10"]


def test_the_quality_floor_stops_a_candidate_that_beats_popularity(stack: Stack) -> None:  # noqa: F811
    interactions, items = _shop()

    manifest = _train(stack, "floor", interactions, items, {**GOOD, "quality_floor": 0.99}, "lightgcn_v1")

    assert manifest["gate"]["promote"] is False
    assert "below the quality floor 0.9900" in manifest["gate"]["reason"]
    assert manifest["gate"]["quality_floor"] == 0.99


def test_an_active_model_that_saw_every_event_cannot_be_judged_and_stays(stack: Stack) -> None:  # noqa: F811
    # Given an active model trained on the same history (nothing newer has arrived since)
    interactions, items = _shop()
    _train(stack, "same1", interactions, items, GOOD, "lightgcn_v1")

    manifest = _train(stack, "same2", interactions, items, GOOD, "lightgcn_v2", active="lightgcn_v1")

    # Then the leak guard leaves no event to judge it on: it stays, and the reason says why
    gate = manifest["gate"]
    assert gate["promote"] is False
    assert "no interaction after the active lightgcn_v1's data" in gate["reason"]
    assert gate["active"]["metrics"] is None


def test_an_unreadable_active_model_is_reported_and_not_compared(stack: Stack) -> None:  # noqa: F811
    interactions, items = _shop()
    _train(stack, "broken1", _older(interactions, 0.7), items, GOOD, "lightgcn_v1")
    key = f"models/{TENANT}/lightgcn_v1/user_tower.onnx"
    stack.s3.put_object(Bucket="embedrec-artifacts-test", Key=key, Body=b"not the published tower")

    manifest = _train(stack, "broken2", interactions, items, GOOD, "lightgcn_v2", active="lightgcn_v1")

    gate = manifest["gate"]
    assert "the active lightgcn_v1 could not be read" in gate["reason"]
    assert "sha256" in gate["active"]["error"]
    assert gate["promote"] == (
        gate["candidate"]["metrics"]["ndcg_10"] > gate["popularity"]["metrics"]["ndcg_10"]
    )


def test_auto_judges_the_chosen_candidate_and_refits_that_spec(stack: Stack) -> None:  # noqa: F811
    # Given an active LightGCN, and a job that may choose among the candidates (EASE, ALS, LightGCN)
    interactions, items = _shop()
    _train(stack, "lgcn", _older(interactions, 0.7), items, GOOD, "lightgcn_v1")

    auto = {**FAST, "model_type": "auto"}
    manifest = _train(stack, "auto", interactions, items, auto, "auto_v2", active="lightgcn_v1")

    # Then the gate judged the chosen spec against the active LightGCN, and that spec was refit
    chosen = manifest["training"]["selection"]["chosen"]
    assert manifest["model_type"] == chosen["model_type"]
    assert len(manifest["training"]["selection"]["candidates"]) > 1
    assert manifest["gate"]["active"]["version"] == "lightgcn_v1"
    assert manifest["gate"]["candidate"]["metrics"]["ndcg_10"] > 0
    assert manifest["counts"]["interactions_used"] == interactions.num_rows
