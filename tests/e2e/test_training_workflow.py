"""Part 2 and 6.1 of the walkthrough over HTTP: upload, train through the workflow, serve, gate, fail.

Runs the real state machine (moto's interpreter), the real pipeline handlers (in-process Lambda
runner) and the real trainer (a local subprocess, CPU) on the embedded stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.sample_data import generate_sample_data
from tests.integration.conftest import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "Workflow-Pass-42"
TIMEOUT_S = 300


def _follow(api: EmbedrecClient, job_id: str) -> list[dict[str, Any]]:
    """Poll until the workflow has finished the job (``finished_at``); returns every distinct step seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = api.request("GET", f"/api/admin/training/status/{job_id}")
        if seen and (status["status"], status["progress"]) == (seen[-1]["status"], seen[-1]["progress"]):
            seen[-1] = status  # same step: keep the freshest view of it
        else:
            seen.append(status)
        if status["finished_at"]:  # set by the workflow's last step: promoted, rejected or failed
            return seen
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not finish within {TIMEOUT_S} s; last: {seen[-1] if seen else None}")


def _recommend(api: EmbedrecClient, user_id: str, wait_for_version: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = api.request(
            "POST", "/api/v1/recommendations", json={"user_id": user_id, "count": 10}
        )
        if wait_for_version is None or body["metadata"]["model_version"] == wait_for_version:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"serving never picked up {wait_for_version}: {body['metadata']}")
        time.sleep(0.5)


def test_train_promote_serve_then_reject_a_worse_candidate(
    api: EmbedrecClient, stack: RunningStack, tmp_path: Path
) -> None:
    # Given a shop with three months of data
    api.open_shop(stack.admin_key, "workflow", password=PASSWORD)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate_sample_data(tmp_path, users=2_000, items=600, interactions=30_000, end=today)
    api.upload_csv("items", tmp_path / "items.csv")
    api.upload_csv("interactions", tmp_path / "interactions.csv")
    before = _recommend(api, "user_0001")
    assert before["metadata"]["algorithm"] == "popular"

    # When training is triggered
    queued = api.request(
        "POST",
        "/api/admin/training/trigger",
        expect=(202,),
        json={"model_type": "lightgcn", "config": {"epochs": 8, "embedding_dim": 32}},
    )
    assert queued["status"] == "queued"
    history = _follow(api, queued["job_id"])

    # Then it went queued -> running (progress rising) -> completed, and was promoted
    states = [h["status"] for h in history]
    assert states[0] == "queued" and "running" in states and states[-1] == "completed"
    running = [h["progress"] for h in history if h["status"] == "running"]
    assert running == sorted(running) and len(set(running)) >= 2
    final = history[-1]
    assert final["deployed"] is True and final["progress"] == 100
    assert final["metrics"]["val_ndcg_10"] > 0 and final["model_path"].endswith("/user_tower.onnx")
    version = final["model_version"]
    served = _recommend(api, "user_0001", wait_for_version=version)
    assert served["metadata"]["algorithm"] == "lightgcn" and len(served["recommendations"]) == 10
    health = api.request("GET", "/api/v1/health")
    assert (health["model_loaded"], health["model_version"]) == (True, version)
    assert 500 < health["index_size"] <= 600  # the catalogue's items that appear in the training window

    # When a worse candidate is trained (barely any learning), it is rejected and serving keeps the old one
    worse = api.request(
        "POST",
        "/api/admin/training/trigger",
        expect=(202,),
        json={
            "model_type": "lightgcn",  # auto would fit ALS/EASE, which no learning rate can hobble
            "config": {"epochs": 1, "learning_rate": 0.000001, "embedding_dim": 8},
        },
    )
    rejected = _follow(api, worse["job_id"])[-1]
    assert rejected["status"] == "completed" and rejected["deployed"] is False
    assert "does not beat" in rejected["decision"]
    assert _recommend(api, "user_0001")["metadata"]["model_version"] == version
    models = api.request("GET", "/api/v1/models")
    assert models["active_version"] == version
    assert {m["version"]: m["status"] for m in models["models"]}[rejected["model_version"]] == "rejected"


def test_a_failing_training_job_ends_failed_with_its_message_and_serving_is_untouched(
    api: EmbedrecClient, stack: RunningStack, tmp_path: Path
) -> None:
    # Given a shop whose customers only ever viewed products (nothing a model can learn intent from)
    api.open_shop(stack.admin_key, "viewsonly", password=PASSWORD)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate_sample_data(tmp_path, users=300, items=100, interactions=3_000, end=today)
    lines = (tmp_path / "interactions.csv").read_text().splitlines()
    views = [lines[0]] + [line for line in lines[1:] if ",view," in line]
    (tmp_path / "views.csv").write_text("\n".join(views) + "\n")
    api.upload_csv("items", tmp_path / "items.csv")
    api.upload_csv("interactions", tmp_path / "views.csv")

    job = api.request("POST", "/api/admin/training/trigger", expect=(202,), json={"config": {"epochs": 2}})
    final = _follow(api, job["job_id"])[-1]

    assert final["status"] == "failed" and final["deployed"] is False
    assert final["error"] and "view" in final["error"]
    assert _recommend(api, "user_0001")["metadata"]["algorithm"] == "popular"
    assert api.request("GET", "/api/v1/health")["model_loaded"] is False
    # and the tenant may train again
    assert api.request("POST", "/api/admin/training/trigger", expect=(202,), json={})["status"] == "queued"


def test_a_training_container_killed_mid_epoch_fails_the_job_and_a_retry_is_possible(
    api: EmbedrecClient, stack: RunningStack, tmp_path: Path
) -> None:
    if stack.aws_endpoint is None:
        pytest.skip("killing the training process needs the embedded stack on this machine")
    # Given a shop training a long job
    api.open_shop(stack.admin_key, "killed", password=PASSWORD)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generate_sample_data(tmp_path, users=1_000, items=300, interactions=15_000, end=today)
    api.upload_csv("items", tmp_path / "items.csv")
    api.upload_csv("interactions", tmp_path / "interactions.csv")
    job = api.request(
        "POST", "/api/admin/training/trigger", expect=(202,), json={"config": {"epochs": 1000, "patience": 0}}
    )
    deadline = time.monotonic() + TIMEOUT_S
    while api.request("GET", f"/api/admin/training/status/{job['job_id']}")["current_epoch"] in (None, 0):
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.3)

    # When its container dies mid-epoch (SIGKILL: no chance to write anything)
    trainers = subprocess.run(
        ["pgrep", "-f", "training_jobs.train"], capture_output=True, text=True
    ).stdout.split()
    assert trainers, "no local training process found"
    for pid in trainers:
        os.kill(int(pid), signal.SIGKILL)
    final = _follow(api, job["job_id"])[-1]

    # Then the job is failed with the container's exit, serving is untouched, and training can start again
    assert final["status"] == "failed" and final["deployed"] is False
    assert "exited" in final["error"] and "-9" in final["error"]
    assert _recommend(api, "user_0001")["metadata"]["algorithm"] == "popular"
    assert api.request("POST", "/api/admin/training/trigger", expect=(202,), json={})["status"] == "queued"
