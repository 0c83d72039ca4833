"""Training trigger/status, models and schedules through the api app (moto in-process, no execution)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from fastapi.testclient import TestClient

from contract.training_job import TrainingJobFields
from embedrec_local.provision import SCHEDULE_GROUP, LocalNames
from functions.common import resources
from functions.training.config import trainer_config
from functions.training.schedule import DEFAULT_WINDOW, TrainingWindow
from functions.training.store.model_registry import ModelRegistry, ModelVersion
from functions.training.store.training_jobs import TrainingJobRepository
from tests.functional.conftest import Shop, admin_headers


def _jobs(names: LocalNames) -> TrainingJobRepository:
    return TrainingJobRepository(boto3.resource("dynamodb").Table(names.table(resources.TRAINING_JOBS)))


def test_trigger_answers_queued_and_starts_an_execution_named_after_the_job(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    response = client.post(
        "/api/admin/training/trigger",
        headers=shop.auth,
        json={
            "tenant_id": shop.tenant_id,
            "model_type": "lightgcn",
            "config": {
                "embedding_dim": 64,
                "num_layers": 3,
                "epochs": 20,
                "learning_rate": 0.001,
                "batch_size": 1024,
            },
        },
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["started_at"] is None
    assert body["job_id"].startswith("job_") and body["estimated_duration_minutes"] >= 1
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]] == [body["job_id"]]
    status = client.get(f"/api/admin/training/status/{body['job_id']}", headers=shop.auth).json()
    assert (status["status"], status["progress"], status["total_epochs"], status["deployed"]) == (
        "queued",
        0,
        20,
        False,
    )


def test_one_running_job_per_tenant(client: TestClient, shop: Shop, other_shop: Shop) -> None:
    first = client.post("/api/admin/training/trigger", headers=shop.auth, json={})
    second = client.post("/api/admin/training/trigger", headers=shop.auth, json={})
    elsewhere = client.post("/api/admin/training/trigger", headers=other_shop.auth, json={})

    assert first.status_code == 202
    assert second.status_code == 409 and first.json()["job_id"] in second.json()["detail"]
    assert elsewhere.status_code == 202


def test_only_tenant_admins_train_and_only_their_own_tenant(
    client: TestClient, shop: Shop, other_shop: Shop
) -> None:
    created = client.post(
        "/api/admin/users",
        headers=admin_headers(),
        json={
            "tenant_id": shop.tenant_id,
            "email": "member@techgadgets.com",
            "password": "Str0ng-Passw0rd!",
            "role": "member",
        },
    )
    assert created.status_code == 201
    member_token = client.post(
        "/api/v1/auth/login", json={"email": "member@techgadgets.com", "password": "Str0ng-Passw0rd!"}
    ).json()["access_token"]

    as_member = client.post(
        "/api/admin/training/trigger", json={}, headers={"Authorization": f"Bearer {member_token}"}
    )
    other_tenant = client.post(
        "/api/admin/training/trigger", json={"tenant_id": other_shop.tenant_id}, headers=shop.auth
    )

    assert as_member.status_code == 403
    assert other_tenant.status_code == 403


@pytest.mark.parametrize(
    "config",
    [{"epochs": 0}, {"embedding_dim": 100000}, {"learning_rate": -1}, {"unknown": 1}, {"batch_size": "many"}],
)
def test_bad_training_config_is_422(client: TestClient, shop: Shop, config: dict[str, object]) -> None:
    response = client.post("/api/admin/training/trigger", headers=shop.auth, json={"config": config})

    assert response.status_code == 422


def test_nan_learning_rate_is_422(client: TestClient, shop: Shop) -> None:
    response = client.post(
        "/api/admin/training/trigger",
        headers={**shop.auth, "Content-Type": "application/json"},
        content=b'{"config": {"learning_rate": NaN}}',
    )

    assert response.status_code == 422


def test_status_shows_progress_and_the_completed_shape(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    job_id = client.post(
        "/api/admin/training/trigger", headers=shop.auth, json={"config": {"epochs": 20}}
    ).json()["job_id"]
    jobs = _jobs(aws_env)
    jobs.update(
        shop.tenant_id,
        job_id,
        TrainingJobFields(
            status="running",
            progress=45,
            current_epoch=9,
            metrics={"train_loss": 0.234, "val_ndcg_10": 0.312},
        ),
    )
    running = client.get(f"/api/admin/training/status/{job_id}", headers=shop.auth).json()
    jobs.update(
        shop.tenant_id,
        job_id,
        TrainingJobFields(
            status="completed",
            progress=100,
            model_version="lightgcn_v1",
            metrics={"train_loss": 0.156, "val_ndcg_10": 0.378, "training_time_seconds": 42.0},
        ),
    )
    completed = client.get(f"/api/admin/training/status/{job_id}", headers=shop.auth).json()

    assert (running["status"], running["progress"], running["current_epoch"], running["total_epochs"]) == (
        "running",
        45,
        9,
        20,
    )
    assert running["metrics"] == {"train_loss": 0.234, "val_ndcg_10": 0.312}
    assert (
        completed["model_path"]
        == f"s3://{aws_env.bucket(resources.ARTIFACTS_BUCKET)}/models/{shop.tenant_id}/lightgcn_v1/user_tower.onnx"
    )
    assert completed["index_path"].endswith("/lightgcn_v1/items.faiss")


def test_status_of_unknown_or_foreign_jobs_is_404(client: TestClient, shop: Shop, other_shop: Shop) -> None:
    job_id = client.post("/api/admin/training/trigger", headers=shop.auth, json={}).json()["job_id"]

    assert client.get(f"/api/admin/training/status/{job_id}", headers=other_shop.auth).status_code == 404
    assert client.get("/api/admin/training/status/job_000000000000", headers=shop.auth).status_code == 404
    assert client.get("/api/admin/training/status/%23RUNNING", headers=shop.auth).status_code == 422


def test_models_list_and_rollback(
    client: TestClient, shop: Shop, other_shop: Shop, aws_env: LocalNames
) -> None:
    registry = ModelRegistry(boto3.resource("dynamodb").Table(aws_env.table(resources.MODEL_REGISTRY)))
    now = datetime.now(UTC)
    for version, ndcg in (("lightgcn_v1", 0.30), ("lightgcn_v2", 0.35)):
        registry.put_version(
            shop.tenant_id,
            ModelVersion(
                version=version,
                status="candidate",
                model_type="lightgcn",
                metrics={"ndcg_10": ndcg},
                manifest_key=f"models/{shop.tenant_id}/{version}/m.json",
                created_at=f"2025-01-0{version[-1]}T00:00:00Z",
            ),
        )
    registry.switch_active(shop.tenant_id, "lightgcn_v2", "k", expected=None, now=now)

    listed = client.get("/api/v1/models", headers=shop.auth).json()
    rolled = client.post("/api/v1/models/lightgcn_v1/activate", headers=shop.auth)
    foreign = client.post("/api/v1/models/lightgcn_v1/activate", headers=other_shop.auth)

    assert listed["active_version"] == "lightgcn_v2"
    assert [(m["version"], m["active"]) for m in listed["models"]] == [
        ("lightgcn_v2", True),
        ("lightgcn_v1", False),
    ]
    assert rolled.status_code == 200 and rolled.json()["active_version"] == "lightgcn_v1"
    statuses = {m["version"]: m["status"] for m in rolled.json()["models"]}
    assert statuses == {"lightgcn_v1": "active", "lightgcn_v2": "retired"}
    assert foreign.status_code == 404
    assert client.get("/api/v1/models", headers=other_shop.auth).json() == {
        "active_version": None,
        "models": [],
    }


def test_schedule_is_created_disabled_and_enabled_by_the_first_interactions(
    client: TestClient, shop: Shop
) -> None:
    scheduler = boto3.client("scheduler")
    name = f"retrain-{shop.tenant_id}"
    before = scheduler.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)

    client.post(
        "/api/v1/interactions",
        headers=shop.auth,
        json={"user_id": "u1", "item_id": "i1", "interaction_type": "view"},
    )

    after = scheduler.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)
    assert (before["State"], after["State"]) == ("DISABLED", "ENABLED")
    assert before["ScheduleExpression"] == TrainingWindow.parse(DEFAULT_WINDOW).cron(shop.tenant_id)
    assert '"trigger": "schedule"' in before["Target"]["Input"]


def test_tenant_schedule_is_configurable_and_validated(client: TestClient) -> None:
    ok = client.post(
        "/api/admin/tenants",
        headers=admin_headers(),
        json={
            "name": "Night owls",
            "slug": "nightowls",
            "settings": {"training_schedule": "cron(30 4 * * ? *)"},
        },
    )
    bad = client.post(
        "/api/admin/tenants",
        headers=admin_headers(),
        json={"name": "Bad", "slug": "badsched", "settings": {"training_schedule": "every day please"}},
    )

    assert ok.status_code == 201
    schedule = boto3.client("scheduler").get_schedule(
        Name=f"retrain-{ok.json()['id']}", GroupName=SCHEDULE_GROUP
    )
    assert schedule["ScheduleExpression"] == "cron(30 4 * * ? *)"
    assert bad.status_code == 422 and "training_schedule" in bad.json()["detail"]


def test_the_window_options_reach_the_workflow_and_never_the_trainer(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    config = {"epochs": 2, "window_days": 60, "as_of": "2025-03-31"}

    response = client.post("/api/admin/training/trigger", headers=shop.auth, json={"config": config})
    refused = client.post(
        "/api/admin/training/trigger", headers=shop.auth, json={"config": {"as_of": "soon"}}
    )

    assert response.status_code == 202, response.text
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    execution = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
    started = json.loads(sfn.describe_execution(executionArn=execution)["input"])
    assert started["config"] == config
    assert trainer_config(started["config"]) == {"epochs": 2}
    assert refused.status_code == 422 and "as_of" in refused.text
