"""GDPR erasure: a shopper leaves raw data, snapshots and the live feed; the next training excludes them."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import resources
from functions.common.settings import get_pipeline_settings
from functions.pipeline import steps
from functions.pipeline.control import open_job
from functions.pipeline.handlers import pipeline_context
from tests.functional.conftest import Shop

ITEMS = b"item_id,title,category,price,brand,description\n" + b"".join(
    f"item_{i},Item {i},Audio,{10 + i}.0,Sony,d\n".encode() for i in range(4)
)


def _csv_rows(now: datetime) -> bytes:
    lines = ["user_id,item_id,interaction_type,timestamp"]
    for user in ("alice", "bob"):
        for day in range(4):
            stamp = (now - timedelta(days=day + 1)).isoformat().replace("+00:00", "Z")
            lines.append(f"{user},item_{day},purchase,{stamp}")
    return ("\n".join(lines) + "\n").encode()


def _users_in(bucket: str, prefix: str) -> set[str]:
    s3 = boto3.client("s3")
    users: set[str] = set()
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        if obj["Key"].endswith("interactions.parquet") or "/interactions/" in obj["Key"]:
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            users |= set(pq.read_table(io.BytesIO(body)).column("user_id").to_pylist())
    return users


def _snapshot(ctx: steps.PipelineContext, tenant_id: str, now: datetime) -> str:
    """Open a training job at ``now`` and take its dataset snapshot a second later; the job id."""
    job = open_job(ctx.jobs, tenant_id, model_type="lightgcn", config={}, trigger="api", now=now)
    steps.prepare_dataset(
        ctx,
        {"tenant_id": tenant_id, "job_id": job["job_id"], "model_type": "lightgcn"},
        now=now + timedelta(seconds=1),
        window_days=90,
        validation_fraction=0.2,
    )
    return str(job["job_id"])


def test_erasure_removes_every_copy_and_the_next_training_excludes_the_shopper(
    client: TestClient, shop: Shop, other_shop: Shop, aws_env: LocalNames
) -> None:
    now = datetime.now(UTC)
    for tenant in (shop, other_shop):
        client.post("/api/v1/items", headers={**tenant.auth, "Content-Type": "text/csv"}, content=ITEMS)
        client.post(
            "/api/v1/interactions",
            headers={**tenant.auth, "Content-Type": "text/csv"},
            content=_csv_rows(now),
        )
    client.post(
        "/api/v1/interactions",
        headers=shop.auth,
        json={"user_id": "alice", "item_id": "item_1", "interaction_type": "click"},
    )
    get_pipeline_settings.cache_clear()
    pipeline_context.cache_clear()
    ctx = pipeline_context()
    job_id = _snapshot(ctx, shop.tenant_id, now)
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    assert "alice" in _users_in(bucket, f"datasets/{shop.tenant_id}/")

    response = client.delete("/api/v1/users/alice", headers=shop.auth)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["interactions_deleted"] == 4 + 1 + 5  # csv rows, the JSON click, the snapshot's rows
    assert report["recent_events_deleted"] == 4 + 1  # CSV rows feed serving's history too, and the click
    assert _users_in(bucket, f"raw/{shop.tenant_id}/") == {"bob"}
    assert _users_in(bucket, f"datasets/{shop.tenant_id}/") == {"bob"}
    assert "alice" in _users_in(bucket, f"raw/{other_shop.tenant_id}/")  # another shop's alice is untouched
    ctx.jobs.release_lock(shop.tenant_id, job_id)
    next_job_id = _snapshot(ctx, shop.tenant_id, now + timedelta(seconds=1))
    assert _users_in(bucket, f"datasets/{shop.tenant_id}/{next_job_id}/") == {"bob"}


def test_erasure_needs_write_permission(client: TestClient, shop: Shop) -> None:
    key = client.post(
        "/api/v1/api-keys", headers=shop.auth, json={"name": "ro", "permissions": ["read"]}
    ).json()

    response = client.delete("/api/v1/users/alice", headers={"Authorization": f"Bearer {key['key']}"})

    assert response.status_code == 403
    assert client.delete("/api/v1/users/bad%20id", headers=shop.auth).status_code == 422
