"""Ingestion under S3 and DynamoDB failures: a clear 503, nothing half-visible, a retry stores rows once."""

from __future__ import annotations

import io

import boto3
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import aws, resources
from tests.functional.conftest import Shop
from tests.functional.faults.conftest import failing

ITEMS = b"item_id,title,category,price,brand,description\nitem_1,Speaker,Audio,99.5,Sony,ok\n"
EVENTS = [
    {"event_id": f"evt-{n}", "user_id": f"u{n}", "item_id": "item_1", "interaction_type": "click"}
    for n in range(5)
]


def _stored_event_ids(bucket: str, tenant_id: str) -> list[str]:
    s3 = boto3.client("s3")
    ids: list[str] = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=f"raw/{tenant_id}/interactions/").get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        ids += pq.read_table(io.BytesIO(body)).column("event_id").to_pylist()
    return sorted(ids)


def test_a_throttled_event_store_answers_503_and_the_retry_stores_each_event_once(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS)
    bucket = aws_env.bucket(resources.DATA_BUCKET)

    # The recent-events feed is written after the Parquet: its failure must undo the Parquet and the claims.
    with failing(aws.dynamodb_client(), {"BatchWriteItem": 25}) as faults:
        refused = client.post("/api/v1/interactions", headers=shop.auth, json=EVENTS)

    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert faults.raised["BatchWriteItem"] >= 1
    assert _stored_event_ids(bucket, shop.tenant_id) == []  # nothing half-visible
    retry = client.post("/api/v1/interactions", headers=shop.auth, json=EVENTS)
    assert (retry.status_code, retry.json()["accepted"], retry.json()["duplicates"]) == (200, 5, 0)
    again = client.post("/api/v1/interactions", headers=shop.auth, json=EVENTS)
    assert again.json()["duplicates"] == 5
    assert _stored_event_ids(bucket, shop.tenant_id) == sorted(e["event_id"] for e in EVENTS)


def test_an_s3_outage_during_an_upload_is_a_503_that_loses_nothing_accepted(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    with failing(aws.s3_client(), {"PutObject": 10}):
        refused = client.post(
            "/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS
        )

    assert refused.status_code == 503
    assert "retry" in refused.json()["detail"]
    accepted = client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS)
    assert accepted.json()["accepted"] == 1
