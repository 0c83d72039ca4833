"""Concurrent uploads and retried events for one tenant: every accepted row lands in S3 exactly once."""

from __future__ import annotations

import io
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import resources
from tests.functional.conftest import Shop

ITEMS = b"item_id,title,category,price,brand,description\nitem_1,Speaker,Audio,99.5,Sony,ok\n"


def test_retry_storms_and_parallel_batches_store_each_event_once(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS)
    shared = [
        {"event_id": f"shared-{n}", "user_id": f"u{n}", "item_id": "item_1", "interaction_type": "click"}
        for n in range(20)
    ]
    own = [
        [
            {"event_id": f"w{w}-{n}", "user_id": f"w{w}", "item_id": "item_1", "interaction_type": "view"}
            for n in range(10)
        ]
        for w in range(8)
    ]

    # Eight clients at once: each sends the same 20 events (a retry storm) and 10 of its own
    def send(worker: int) -> tuple[int, int]:
        first = client.post("/api/v1/interactions", headers=shop.auth, json=shared).json()
        second = client.post("/api/v1/interactions", headers=shop.auth, json=own[worker]).json()
        return first["accepted"] + second["accepted"], first["duplicates"] + second["duplicates"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(send, range(8)))

    # Then every request was answered in full, and S3 holds each event id exactly once
    assert all(accepted + duplicates == 30 for accepted, duplicates in outcomes)
    assert sum(accepted for accepted, _ in outcomes) == 20 + 8 * 10  # a replay is not accepted again
    assert sum(duplicates for _, duplicates in outcomes) == 7 * 20  # one client stored the shared batch
    s3 = boto3.client("s3")
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    stored: Counter[str] = Counter()
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=f"raw/{shop.tenant_id}/interactions/")["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        stored.update(pq.read_table(io.BytesIO(body)).column("event_id").to_pylist())
    assert len(stored) == 20 + 8 * 10 and set(stored.values()) == {1}
