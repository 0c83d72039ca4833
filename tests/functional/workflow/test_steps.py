"""The workflow's steps against moto: snapshot, gate, promotion, rejection, failure."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from embedrec_local.runner import LambdaRunner
from functions.common.errors import DatasetError, TrainingFailedError
from functions.common.settings import get_pipeline_settings
from functions.training import steps
from functions.training.control import list_models
from functions.training.handlers import pipeline_context
from functions.training.store.batch import TrainingJobQueue
from tests.functional.conftest import Shop

NOW = datetime.now(UTC).replace(microsecond=0)
ITEMS = "item_id,title,category,price,brand,description\n" + "".join(
    f"item_{i},Item {i},{'Audio' if i % 2 else 'Laptops'},{10 + i}.0,Brand{i % 3},d\n" for i in range(6)
)


def _ts(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def _upload(
    client: TestClient, shop: Shop, rows: Sequence[tuple[str, str, str, float]], event_ids: bool = False
) -> None:
    header = "user_id,item_id,interaction_type,timestamp" + (",event_id" if event_ids else "")
    lines = [f"{u},{i},{t},{_ts(d)}" + (f",e-{u}-{i}-{d}" if event_ids else "") for u, i, t, d in rows]
    response = client.post(
        "/api/v1/interactions",
        headers={**shop.auth, "Content-Type": "text/csv"},
        content="\n".join([header, *lines]).encode(),
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def ctx(aws_env: LocalNames) -> steps.PipelineContext:
    get_pipeline_settings.cache_clear()
    pipeline_context.cache_clear()
    return pipeline_context()


def _state(shop: Shop, job_id: str = "job_test00000001") -> dict[str, object]:
    return {
        "tenant_id": shop.tenant_id,
        "job_id": job_id,
        "model_type": "lightgcn",
        "config": {},
        "poll_seconds": 1,
    }


def _open(ctx: steps.PipelineContext, shop: Shop) -> dict[str, object]:
    from functions.training.control import JobRequest, open_job

    job = open_job(
        ctx.jobs, shop.tenant_id, JobRequest(model_type="lightgcn", config={}, trigger="api"), now=NOW
    )
    return {**_state(shop), "job_id": job.job_id}


def test_prepare_snapshots_the_window_with_a_per_user_time_split(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    rows = [("u1", f"item_{i}", "view", 10 - i) for i in range(5)]  # u1: 5 events, newest is item_4
    rows += [("u2", "item_1", "click", 3), ("u2", "item_2", "purchase", 2)]  # u2: too few to hold out
    rows += [("u3", "item_0", "view", 200)]  # outside the 90-day window
    rows += [("u1", "item_unknown", "view", 1)]  # not in the catalogue: ignored by training
    _upload(client, shop, rows, event_ids=True)
    _upload(client, shop, rows[:2], event_ids=True)  # a retried batch: stored once
    state = _open(ctx, shop)

    result = steps.prepare_dataset(
        ctx, state, now=NOW + timedelta(seconds=1), window_days=90, validation_fraction=0.2
    )

    assert result.version == "lightgcn_v1"
    assert (result.interactions, result.validation, result.users, result.items) == (7, 1, 2, 6)
    data = (
        boto3.client("s3")
        .get_object(
            Bucket=ctx.data.bucket, Key=f"datasets/{shop.tenant_id}/{state['job_id']}/interactions.parquet"
        )["Body"]
        .read()
    )
    table = pq.read_table(io.BytesIO(data)).to_pylist()
    held_out = [(r["user_id"], r["item_id"]) for r in table if r["is_validation"]]
    assert held_out == [("u1", "item_4")]  # u1's newest catalogue interaction; u2 has too few to hold out


def test_prepare_refuses_tenants_without_usable_data(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    state = _open(ctx, shop)
    with pytest.raises(DatasetError, match="no catalogue"):
        steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2)
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    with pytest.raises(DatasetError, match="no interactions yet"):
        steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2)
    _upload(client, shop, [("u1", "item_unknown", "view", 100)])
    with pytest.raises(DatasetError, match="0 interactions with catalogue items between"):
        steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2)
    _upload(client, shop, [("u1", "item_1", "view", 100)])
    with pytest.raises(DatasetError, match=r"too little history for a validation split .* your data spans"):
        steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2)


def test_the_window_is_anchored_on_the_newest_interaction_not_the_clock(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    # Given a history export that ended 400 days ago: four users over 30 days, and one stray old row
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    rows = [(f"u{u}", f"item_{(u + k) % 6}", "view", 400 + 7 * k + u) for u in range(4) for k in range(4)]
    rows += [("u9", "item_0", "purchase", 600)]  # 200 days before the newest: outside 90 days
    _upload(client, shop, rows)
    state = _open(ctx, shop)

    # When the dataset is prepared with the default window
    result = steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2)

    # Then the 90 days end at the newest interaction, and the job record says so
    end = NOW - timedelta(days=400) + timedelta(milliseconds=1)  # the newest interaction, included
    assert (result.interactions, result.users, result.validation) == (16, 4, 4)
    assert result.window == {
        "start": (end - timedelta(days=90)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end": end.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "days": 90,
        "anchor": "newest_interaction",
    }
    assert (ctx.jobs.get(shop.tenant_id, str(state["job_id"])).dataset or {})["window"] == result.window
    assert result.data_span.first == _ts(600)
    snapshot = pq.read_table(
        io.BytesIO(
            boto3.client("s3")
            .get_object(
                Bucket=ctx.data.bucket,
                Key=f"datasets/{shop.tenant_id}/{state['job_id']}/interactions.parquet",
            )["Body"]
            .read()
        )
    )
    assert json.loads(snapshot.schema.metadata[b"embedrec.window"]) == result.window


def test_the_prepare_task_reads_window_days_and_as_of_from_the_jobs_config(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    rows = [(f"u{u}", f"item_{k}", "view", 48 + k + u / 10) for u in range(3) for k in range(3)]
    rows += [(f"u{u}", "item_4", "view", 30) for u in range(3)]  # after as_of
    rows += [(f"u{u}", "item_5", "view", 70) for u in range(3)]  # more than 10 days before it
    _upload(client, shop, rows)
    as_of = (NOW - timedelta(days=45)).date()
    state = {**_open(ctx, shop), "config": {"window_days": 10, "as_of": as_of.isoformat(), "epochs": 2}}

    result = LambdaRunner().invoke("prepare-dataset", state)

    assert (result["interactions"], result["users"]) == (9, 3)  # the 10 days up to the end of as_of's day
    assert result["window"]["anchor"] == "as_of" and result["window"]["days"] == 10


def test_an_explicit_as_of_moves_the_window_and_an_empty_one_says_what_the_data_spans(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    rows = [(f"u{u}", f"item_{(u + k) % 6}", "click", 400 - 5 * k - u) for u in range(3) for k in range(3)]
    rows += [(f"v{u}", f"item_{(u + k) % 6}", "view", 300 - 5 * k - u) for u in range(3) for k in range(3)]
    _upload(client, shop, rows)
    state = _open(ctx, shop)

    # as_of 350 days ago: only the older group of users is in the 90 days before it
    as_of = NOW - timedelta(days=350)
    result = steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2, as_of=as_of)
    assert (result.interactions, result.users) == (9, 3)
    assert result.window["anchor"] == "as_of"

    # as_of today: nothing in the window, and the message names the data's own dates and the fix
    first, last = (NOW - timedelta(days=400)).date(), (NOW - timedelta(days=288)).date()
    with pytest.raises(DatasetError) as raised:
        steps.prepare_dataset(ctx, state, now=NOW, window_days=90, validation_fraction=0.2, as_of=NOW)
    assert raised.value.message == (
        f"0 interactions with catalogue items between {(NOW - timedelta(days=90)).date()} and {NOW.date()}; "
        f"your data spans {first}..{last}; set config.window_days or as_of"
    )


def _candidate(
    ctx: steps.PipelineContext,
    shop: Shop,
    version: str,
    ndcg: float,
    *,
    promote: bool,
    reason: str,
    judged_against: str | None,
) -> None:
    """A published candidate whose job's gate judged it against ``judged_against``."""
    ctx.artifacts.put_json(
        f"models/{shop.tenant_id}/{version}/manifest.json",
        {
            "tenant_id": shop.tenant_id,
            "version": version,
            "model_type": "lightgcn",
            "created_at": _ts(0),
            "metrics": {"ndcg_10": ndcg},
            "baseline_metrics": {"ndcg_10": 0.05},
            "gate": {
                "metric": "ndcg_10",
                "promote": promote,
                "reason": reason,
                "candidate": {"metrics": {"ndcg_10": ndcg}},
                "active": None
                if judged_against is None
                else {"version": judged_against, "metrics": {"ndcg_10": 0.3}},
                "popularity": {"metrics": {"ndcg_10": 0.05}},
            },
        },
    )


def _run_gate(
    ctx: steps.PipelineContext,
    shop: Shop,
    version: str,
    ndcg: float,
    *,
    promote: bool,
    reason: str = "as the job decided",
    judged_against: str | None = None,
) -> dict[str, object]:
    state = _open(ctx, shop)
    state["dataset"] = {"version": version}
    _candidate(ctx, shop, version, ndcg, promote=promote, reason=reason, judged_against=judged_against)
    state["evaluation"] = steps.evaluate_candidate(ctx, state, now=NOW).as_json()  # as the ASL stores it
    if state["evaluation"]["promote"]:  # type: ignore[index]
        steps.promote_model(ctx, state, now=NOW)
    else:
        steps.reject_candidate(ctx, state, now=NOW)
    return state


def test_evaluation_follows_the_jobs_gate(shop: Shop, ctx: steps.PipelineContext) -> None:
    # Given three jobs whose gates judged their candidates against the model active when they ran
    first = _run_gate(ctx, shop, "lightgcn_v1", 0.30, promote=True)
    worse = _run_gate(
        ctx,
        shop,
        "lightgcn_v2",
        0.25,
        promote=False,
        reason="gate NDCG@10 0.2500 does not beat the active lightgcn_v1's 0.3000",
        judged_against="lightgcn_v1",
    )
    better = _run_gate(ctx, shop, "lightgcn_v3", 0.40, promote=True, judged_against="lightgcn_v1")

    # Then each verdict is the job's, and the registry and decision.json say why
    assert first["evaluation"]["promote"] is True  # type: ignore[index]
    assert worse["evaluation"]["promote"] is False  # type: ignore[index]
    assert "does not beat the active lightgcn_v1" in worse["evaluation"]["reason"]  # type: ignore[index]
    assert better["evaluation"]["promote"] is True  # type: ignore[index]
    assert ctx.registry.active(shop.tenant_id).version == "lightgcn_v3"  # type: ignore[union-attr]
    statuses = {v.version: v.status for v in ctx.registry.list_versions(shop.tenant_id)}
    assert statuses == {"lightgcn_v1": "retired", "lightgcn_v2": "rejected", "lightgcn_v3": "active"}
    decision = json.loads(ctx.artifacts.get_bytes(f"models/{shop.tenant_id}/lightgcn_v2/decision.json"))
    assert decision["promoted"] is False and "does not beat" in decision["reason"]
    gate = ctx.registry.get_version(shop.tenant_id, "lightgcn_v2").gate
    assert gate is not None
    assert gate.candidate == 0.25 and gate.active_version == "lightgcn_v1"
    assert gate.popularity == 0.05 and gate.promote is False
    listed = {m.version: m for m in list_models(ctx.registry, shop.tenant_id).models}
    assert listed["lightgcn_v2"].gate == gate  # GET /api/v1/models shows the gate
    job = ctx.jobs.get(shop.tenant_id, str(better["job_id"]))
    assert job.deployed is True and "decision" in job.model_fields_set


def test_a_verdict_against_a_model_that_no_longer_serves_is_not_followed(
    shop: Shop, ctx: steps.PipelineContext
) -> None:
    # Given v2 serving, and a job that judged its candidate against v1 (active when the job started)
    _run_gate(ctx, shop, "lightgcn_v1", 0.30, promote=True)
    _run_gate(ctx, shop, "lightgcn_v2", 0.35, promote=True, judged_against="lightgcn_v1")

    stale = _run_gate(ctx, shop, "lightgcn_v3", 0.50, promote=True, judged_against="lightgcn_v1")

    # Then the candidate is not promoted, and the reason says so
    assert stale["evaluation"]["promote"] is False  # type: ignore[index]
    assert "the active model changed while the job ran" in stale["evaluation"]["reason"]  # type: ignore[index]
    assert ctx.registry.active(shop.tenant_id).version == "lightgcn_v2"  # type: ignore[union-attr]


def test_promotion_replay_is_idempotent_and_a_stale_gate_cannot_win(
    shop: Shop, ctx: steps.PipelineContext
) -> None:
    state = _run_gate(ctx, shop, "lightgcn_v1", 0.30, promote=True)
    steps.promote_model(ctx, state, now=NOW)  # Step Functions may retry a task that already succeeded

    assert ctx.registry.active(shop.tenant_id).revision == 1  # type: ignore[union-attr]


def test_candidate_without_manifest_or_gate_fails_clearly(shop: Shop, ctx: steps.PipelineContext) -> None:
    state = {**_open(ctx, shop), "dataset": {"version": "lightgcn_v9"}}

    with pytest.raises(TrainingFailedError, match="no manifest"):
        steps.evaluate_candidate(ctx, state, now=NOW)
    ctx.artifacts.put_json(
        f"models/{shop.tenant_id}/lightgcn_v9/manifest.json",
        {"version": "lightgcn_v9", "metrics": {"ndcg_10": 0.5}},
    )
    with pytest.raises(TrainingFailedError, match="no gate decision"):
        steps.evaluate_candidate(ctx, state, now=NOW)


@dataclass
class _RecordingBatch:
    """A Batch client that records submissions (the job itself is exercised by tests/functional/training)."""

    submitted: list[dict[str, Any]] = field(default_factory=list)

    def submit_job(self, **kwargs: Any) -> dict[str, str]:
        self.submitted.append(kwargs)
        return {"jobId": f"batch-{len(self.submitted)}"}


def test_submission_names_the_active_model_and_the_floor(shop: Shop, ctx: steps.PipelineContext) -> None:
    batch = _RecordingBatch()
    local = replace(ctx, batch=TrainingJobQueue(batch, "queue", "definition"))  # type: ignore[arg-type]
    dataset = {"uri": "s3://bucket/datasets/x/", "version": "lightgcn_v2"}

    # Given no active model, then v1 active
    opened = _open(ctx, shop)
    first = steps.submit_training(local, {**opened, "dataset": dataset}, default_floor=0.02)
    ctx.jobs.release_lock(shop.tenant_id, str(opened["job_id"]))
    _run_gate(ctx, shop, "lightgcn_v1", 0.30, promote=True)
    second = steps.submit_training(local, {**_open(ctx, shop), "dataset": dataset}, default_floor=0.02)

    environments = [
        {item["name"]: item["value"] for item in call["containerOverrides"]["environment"]}
        for call in batch.submitted
    ]
    assert "EMBEDREC_ACTIVE_MANIFEST_KEY" not in environments[0]
    active_key = f"models/{shop.tenant_id}/lightgcn_v1/manifest.json"
    assert environments[1]["EMBEDREC_ACTIVE_MANIFEST_KEY"] == active_key
    assert all(json.loads(env["EMBEDREC_TRAINING_CONFIG"])["quality_floor"] == 0.02 for env in environments)
    assert first.active_version is None and second.active_version == "lightgcn_v1"


def test_record_failure_marks_the_job_and_frees_the_tenant(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    state = _open(ctx, shop)
    state["error"] = {
        "Error": "DatasetError",
        "Cause": json.dumps({"errorType": "DatasetError", "errorMessage": "no catalogue"}),
    }

    steps.record_failure(ctx, state, now=NOW)

    job = ctx.jobs.get(shop.tenant_id, str(state["job_id"]))
    assert (job.status, job.error) == ("failed", "DatasetError: no catalogue")
    assert client.post("/api/admin/training/trigger", headers=shop.auth, json={}).status_code == 202


def test_failure_message_reads_every_cause_shape() -> None:
    assert steps.failure_message({"Error": "X", "Cause": "plain"}) == "X: plain"
    assert steps.failure_message({"Error": "States.Timeout"}) == "States.Timeout"
    assert steps.failure_message({"Error": "E", "Cause": '{"errorMessage": "m"}'}) == "E: m"


def test_an_upload_that_died_before_its_record_is_invisible_to_training(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext
) -> None:
    # Given a committed upload, and the Parquet of one whose ingestion died before writing its record
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    _upload(client, shop, [("u1", f"item_{i}", "view", 10 - i) for i in range(5)])
    committed = ctx.data.read_parquet(ctx.data.list_keys(f"raw/{shop.tenant_id}/interactions/")[0])
    orphan = committed.set_column(
        committed.column_names.index("user_id"), "user_id", pa.array(["ghost"] * committed.num_rows)
    )
    ctx.data.put_parquet(
        f"raw/{shop.tenant_id}/interactions/{NOW.date().isoformat()}/upload_dead00000000.parquet", orphan
    )
    state = _open(ctx, shop)

    # When the dataset is prepared
    result = steps.prepare_dataset(
        ctx, state, now=NOW + timedelta(seconds=1), window_days=90, validation_fraction=0.2
    )

    # Then only the committed upload's rows are in it
    assert (result.interactions, result.users) == (5, 1)
