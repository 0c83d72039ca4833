"""A dropped file read in chunks: stored exactly as when read whole, and undone whole when it fails."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import moto.s3.models
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from contract import layout
from contract.interactions import INTERACTION_TYPES, INTERACTION_WEIGHTS
from embedrec_local.provision import LocalNames
from functions.common import aws, resources
from functions.common.errors import ServiceUnavailableError
from functions.ingestion.drop_folder import ingest_dropped_file
from functions.ingestion.store import data_store
from functions.ingestion.store.recent_activity import PACK_ATTRIBUTE
from functions.ingestion.validation import chunks
from tests.functional.conftest import Shop
from tests.functional.faults.conftest import failing

ITEMS = b"item_id,title,category,price,brand\n" + b"".join(
    b"item_%d,Item %d,C%d,%d.5,B\n" % (n, n, n % 3, n) for n in range(20)
)


def _events(rows: int) -> bytes:
    """Interactions with ids on some rows, a few bad rows and an id repeated far from its first row."""
    lines = ["event_id,user_id,item_id,interaction_type,timestamp"]
    for n in range(rows):
        event_id = f"e{n}" if n % 3 == 0 else ""
        kind = "teleport" if n % 97 == 5 else INTERACTION_TYPES[n % 4]
        lines.append(
            f"{event_id},u{n % 41},item_{(n * 7) % 23},{kind},2025-05-{1 + n % 28:02d}T10:{n % 60:02d}:00Z"
        )
    lines.append("e0,u1,item_1,view,2025-05-01T10:00:00Z")  # a repeat of row 1's event id
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Chunks of about 1 KB and Parquet parts of 4 KB; counts the S3 operations made meanwhile."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(data_store, "PART_BYTES", 4096)
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    s3 = aws.s3_client()
    s3.meta.events.register("before-call.s3", count, unique_id="count-s3")
    try:
        yield calls
    finally:
        s3.meta.events.unregister("before-call.s3", unique_id="count-s3")
        monkeypatch.undo()


def _drop(client: TestClient, shop: Shop, bucket: str, body: bytes) -> str:
    response = client.post("/api/v1/uploads", json={"kind": "interactions"}, headers=shop.auth)
    key: str = response.json()["key"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return key


def _drop_events_after_catalogue(client: TestClient, shop: Shop, bucket: str) -> str:
    """Upload the shop's catalogue, then drop a file of 600 events; returns the file's key."""
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS)
    return _drop(client, shop, bucket, _events(600))


def _stored(bucket: str, tenant_id: str) -> pa.Table | None:
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"raw/{tenant_id}/interactions/").get("Contents", [])
    if not listed:
        return None
    assert len(listed) == 1
    body = s3.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read()
    return pq.read_table(io.BytesIO(body)).drop_columns(["upload_id", "ingested_at"])


def _popular(bucket: str, tenant_id: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=layout.popular_key(tenant_id))["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document


def _feed(aws_env: LocalNames, tenant_id: str) -> dict[str, tuple[str, list[Any]]]:
    """Each user's feed entry: (newest time, events)."""
    table = aws.dynamodb_resource().Table(aws_env.table(resources.RECENT_EVENTS))
    feed: dict[str, tuple[str, list[Any]]] = {}
    for item in table.scan()["Items"]:
        tenant, _, user = str(item["tenant_user"]).partition("#")
        if tenant == tenant_id and PACK_ATTRIBUTE in item:
            assert user not in feed  # one entry per user and upload, however many chunks it came in
            feed[user] = (str(item["event_key"]).split("#")[0], json.loads(str(item[PACK_ATTRIBUTE])))
    return feed


def _claims(aws_env: LocalNames, tenant_id: str) -> list[str]:
    table = aws.dynamodb_resource().Table(aws_env.table(resources.EVENT_IDS))
    return sorted(
        str(item["tenant_event"])
        for item in table.scan()["Items"]
        if str(item["tenant_event"]).startswith(tenant_id)
    )


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in {"upload_id", "received_at"}}


def test_a_file_read_in_chunks_is_stored_exactly_as_read_whole(
    client: TestClient, shop: Shop, other_shop: Shop, aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    body = _events(600)
    for tenant in (shop, other_shop):
        client.post("/api/v1/items", headers={**tenant.auth, "Content-Type": "text/csv"}, content=ITEMS)
    now = datetime.now(UTC)

    # Given the same file, read whole by one shop and in ~1 KB chunks (4 KB Parquet parts) by the other
    whole = ingest_dropped_file(_drop(client, shop, bucket, body), now)
    with small_chunks(monkeypatch) as calls:
        chunked = ingest_dropped_file(_drop(client, other_shop, bucket, body), now)

    # Then it really was cut and sent in parts, and everything stored is the same
    assert calls["UploadPart"] >= 3 and calls["CompleteMultipartUpload"] == 1
    assert _comparable(chunked) == _comparable(whole)
    assert (whole["accepted"], whole["rejected"]) == (593, 8)
    assert whole["validation_errors"][-1]["message"] == "duplicate event_id 'e0', first seen at row 1"
    stored_whole, stored_chunked = _stored(bucket, shop.tenant_id), _stored(bucket, other_shop.tenant_id)
    assert stored_whole is not None and stored_chunked is not None and stored_chunked.equals(stored_whole)
    assert _popular(bucket, other_shop.tenant_id) == _popular(bucket, shop.tenant_id)
    assert _feed(aws_env, other_shop.tenant_id) == _feed(aws_env, shop.tenant_id)


def test_a_failure_after_the_last_chunk_leaves_nothing_and_the_retry_counts_each_row_once(
    client: TestClient, shop: Shop, aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    key = _drop_events_after_catalogue(client, shop, bucket)
    s3 = boto3.client("s3")

    with small_chunks(monkeypatch):
        # When the feed (written after every chunk, the counts and popular items) keeps failing
        with failing(aws.dynamodb_client(), {"BatchWriteItem": 50}), pytest.raises(ServiceUnavailableError):
            ingest_dropped_file(key, datetime.now(UTC))

        # Then no rows, parts, counts or claims are left, and the upload is still pending
        assert _stored(bucket, shop.tenant_id) is None
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        assert (
            s3.list_objects_v2(Bucket=bucket, Prefix=resources.item_count_deltas_prefix(shop.tenant_id)).get(
                "Contents", []
            )
            == []
        )
        assert _claims(aws_env, shop.tenant_id) == []

        # When SQS delivers it again, it is stored once, and counted once
        report = ingest_dropped_file(key, datetime.now(UTC))
        again = ingest_dropped_file(key, datetime.now(UTC))  # a late duplicate notification

    assert (report["status"], report["accepted"], again["accepted"]) == ("partial", 593, 593)
    stored = _stored(bucket, shop.tenant_id)
    assert stored is not None and stored.num_rows == 593
    expected = Counter[str]()
    for item, kind in zip(stored["item_id"].to_pylist(), stored["interaction_type"].to_pylist(), strict=True):
        if int(item.removeprefix("item_")) < 20:  # popular items are catalogue items only
            expected[item] += INTERACTION_WEIGHTS[kind]
    popular = _popular(bucket, shop.tenant_id)["overall"]
    top = max(expected.values())
    assert {entry["item_id"]: entry["score"] for entry in popular} == {
        item: round(weight / top, 6) for item, weight in expected.items() if weight
    }
    assert len(_claims(aws_env, shop.tenant_id)) == 198


def test_an_s3_failure_in_the_middle_of_a_file_aborts_its_parts_and_releases_its_claims(
    client: TestClient, shop: Shop, aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    key = _drop_events_after_catalogue(client, shop, bucket)
    s3 = boto3.client("s3")

    with small_chunks(monkeypatch) as calls, failing(aws.s3_client(), {"UploadPart": 1}):
        with pytest.raises(ServiceUnavailableError):
            ingest_dropped_file(key, datetime.now(UTC))
    assert (calls["CreateMultipartUpload"], calls["AbortMultipartUpload"]) == (1, 1)

    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert _stored(bucket, shop.tenant_id) is None
    assert _claims(aws_env, shop.tenant_id) == []
    assert ingest_dropped_file(key, datetime.now(UTC))["accepted"] == 593
