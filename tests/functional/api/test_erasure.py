"""GDPR erasure: a shopper leaves raw data, snapshots and the live feed; the next training excludes them."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import resources
from functions.common.settings import get_pipeline_settings
from functions.ingestion.tables import INTERACTIONS_SCHEMA
from functions.training import steps
from functions.training.control import JobRequest, open_job
from functions.training.handlers import pipeline_context
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
    job = open_job(ctx.jobs, tenant_id, JobRequest(model_type="lightgcn", config={}, trigger="api"), now=now)
    steps.prepare_dataset(
        ctx,
        {"tenant_id": tenant_id, "job_id": job.job_id, "model_type": "lightgcn"},
        now=now + timedelta(seconds=1),
        window_days=90,
        validation_fraction=0.2,
    )
    return job.job_id


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
    # Any id that ingestion could have accepted is erasable (see below); control characters never were.
    assert client.delete("/api/v1/users/bad%00id", headers=shop.auth).status_code == 422
    assert client.post("/api/v1/users/erase", headers=shop.auth, json={"user_id": ""}).status_code == 422


def _plant(aws_env: LocalNames, tenant_id: str, user_id: str, now: datetime) -> None:
    """Interactions stored for ``user_id`` as if an upload had accepted it (today's id rule would not
    accept every odd id, an earlier or later one might: erasure must reach them all)."""
    rows = [
        {"user_id": user_id, "item_id": "item_0", "interaction_type": "view", "timestamp": now},
        {"user_id": "bob", "item_id": "item_1", "interaction_type": "view", "timestamp": now},
    ]
    table = pa.Table.from_pylist(
        [row | {"ingested_at": now, "upload_id": "upload_planted"} for row in rows],
        schema=INTERACTIONS_SCHEMA,
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    boto3.client("s3").put_object(
        Bucket=aws_env.bucket(resources.DATA_BUCKET),
        Key=resources.raw_key(tenant_id, "interactions", "2025-01-01", "upload_planted"),
        Body=buffer.getvalue(),
    )


@pytest.mark.parametrize("via", ["path", "body"])
@pytest.mark.parametrize(
    "user_id",
    ["shop/alice", "john smith", "jürgen_用户", "50%off"],
    ids=["slash", "space", "unicode", "percent"],
)
def test_ids_with_odd_characters_are_erasable(
    client: TestClient, shop: Shop, aws_env: LocalNames, user_id: str, via: str
) -> None:
    now = datetime.now(UTC)
    _plant(aws_env, shop.tenant_id, user_id, now)

    if via == "path":  # one percent-encoded path segment, "/" included
        response = client.delete(f"/api/v1/users/{quote(user_id, safe='')}", headers=shop.auth)
    else:
        response = client.post("/api/v1/users/erase", headers=shop.auth, json={"user_id": user_id})

    assert response.status_code == 200, response.text
    assert (response.json()["user_id"], response.json()["interactions_deleted"]) == (user_id, 1)
    assert _users_in(aws_env.bucket(resources.DATA_BUCKET), f"raw/{shop.tenant_id}/") == {"bob"}


def test_an_id_that_looks_percent_encoded_is_erasable_by_body(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    # No path survives every proxy's decoding of "%2F" unchanged; the body carries the id as it is.
    _plant(aws_env, shop.tenant_id, "a%2Fb", datetime.now(UTC))

    response = client.post("/api/v1/users/erase", headers=shop.auth, json={"user_id": "a%2Fb"})

    assert response.status_code == 200, response.text
    assert response.json()["interactions_deleted"] == 1


def test_an_id_with_a_slash_accepted_by_ingestion_is_erased_through_the_api(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    stamp = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    rows = "user_id,item_id,interaction_type,timestamp\n" + "".join(
        f"{user},item_0,view,{stamp}\n" for user in ("shop/alice", "bob")
    )
    uploaded = client.post(
        "/api/v1/interactions", headers={**shop.auth, "Content-Type": "text/csv"}, content=rows.encode()
    )
    assert uploaded.json()["accepted"] == 2, uploaded.text

    response = client.delete("/api/v1/users/shop%2Falice", headers=shop.auth)

    assert response.status_code == 200, response.text
    assert response.json()["interactions_deleted"] == 1
    assert _users_in(aws_env.bucket(resources.DATA_BUCKET), f"raw/{shop.tenant_id}/") == {"bob"}
