"""The S3 drop folder: a CSV put under incoming/ reaches the ingest handler through the queue."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import boto3
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from embedrec_local.drop_folder import DropFolderPoller
from embedrec_local.provision import DROP_QUEUE, LocalNames
from embedrec_local.runner import LambdaRunner
from functions.common import resources
from functions.ingestion import drop_folder as handler
from functions.ingestion.drop_folder import ingest_dropped_file
from tests.functional.conftest import Shop

ITEMS_CSV = (
    b"item_id,title,category,price,brand,description\n"
    b"item_1,Speaker,Audio,99.5,Sony,ok\n"
    b"item_2,Bad,Audio,-1,Sony,x\n"
)


def _deliver() -> int:
    """Deliver every queued notification (S3 also queues a test event when notifications are set up)."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=DROP_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    poller = DropFolderPoller(LambdaRunner(), url, arn, "us-east-1")
    delivered = 0
    while handled := poller.poll_once(wait_seconds=0):
        delivered += handled
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"
    return delivered


def _report(bucket: str, key: str) -> dict[str, object]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=f"{key}.report.json")["Body"].read()
    return json.loads(body)


def _ticket(client: TestClient, shop: Shop, kind: str) -> dict[str, str]:
    """An upload URL of the shop (the drop folder ingests only files that have one)."""
    response = client.post("/api/v1/uploads", json={"kind": kind}, headers=shop.auth)
    assert response.status_code == 201, response.text
    ticket: dict[str, str] = response.json()
    return ticket


def test_dropped_csv_is_validated_stored_and_reported(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    key = _ticket(client, shop, "items")["key"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=ITEMS_CSV)

    assert _deliver() >= 1

    report = _report(bucket, key)
    assert (report["status"], report["accepted"], report["rejected"]) == ("partial", 1, 1)
    assert report["validation_errors"][0]["field"] == "price"
    catalog = (
        boto3.client("s3").get_object(Bucket=bucket, Key=resources.catalog_key(shop.tenant_id))["Body"].read()
    )
    assert pq.read_table(io.BytesIO(catalog)).column("item_id").to_pylist() == ["item_1"]
    fetched = client.get(f"/api/v1/uploads/{report['upload_id']}", headers=shop.auth)
    assert fetched.status_code == 200 and fetched.json()["source"] == "drop-folder"


def test_presigned_upload_lands_in_the_drop_folder_and_its_report_is_readable(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    ticket = client.post("/api/v1/uploads", json={"kind": "interactions"}, headers=shop.auth).json()
    csv = b"user_id,item_id,interaction_type,timestamp,rating\nu1,item_1,view,2025-01-01T10:00:00Z,\n"
    assert ticket["key"] == f"incoming/{shop.tenant_id}/interactions/{ticket['upload_id']}.csv"
    assert "X-Amz-Signature" in ticket["url"]

    # moto in-process cannot take the presigned HTTP PUT, so put the same object the URL points at.
    boto3.client("s3").put_object(Bucket=aws_env.bucket(resources.DATA_BUCKET), Key=ticket["key"], Body=csv)
    _deliver()

    report = client.get(f"/api/v1/uploads/{ticket['upload_id']}", headers=shop.auth)
    assert report.status_code == 200
    assert (report.json()["accepted"], report.json()["kind"]) == (1, "interactions")


def test_files_for_unknown_tenants_or_unreadable_files_store_nothing(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    s3 = boto3.client("s3")
    ghost = resources.drop_key("tenant_ghost", "items", "x.csv")
    empty = resources.drop_key(shop.tenant_id, "items", "empty.csv")
    s3.put_object(Bucket=bucket, Key=ghost, Body=ITEMS_CSV)
    s3.put_object(Bucket=bucket, Key=empty, Body=b"")

    assert _deliver() >= 2

    assert "unknown tenant" in json.dumps(_report(bucket, ghost))
    assert _report(bucket, empty)["status"] == "failed"
    stored = s3.list_objects_v2(Bucket=bucket, Prefix="raw/").get("Contents", [])
    assert stored == []


def test_a_url_edited_to_another_tenant_or_kind_or_no_url_at_all_is_refused(
    client: TestClient, shop: Shop, other_shop: Shop, aws_env: LocalNames
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    s3 = boto3.client("s3")
    ticket = _ticket(client, shop, "items")
    name = ticket["key"].rsplit("/", 1)[1]
    # The local emulator does not check presigned signatures: an attacker edits the key of their own URL.
    forged = {
        "other tenant": resources.drop_key(other_shop.tenant_id, "items", name),
        "other kind": resources.drop_key(shop.tenant_id, "interactions", name),
        "no URL": resources.drop_key(other_shop.tenant_id, "items", "catalogue.csv"),
        "made-up id": resources.drop_key(other_shop.tenant_id, "items", "upload_0123456789ab.csv"),
    }
    for key in forged.values():
        s3.put_object(Bucket=bucket, Key=key, Body=ITEMS_CSV)

    _deliver()

    for what, key in forged.items():
        report = _report(bucket, key)
        assert (report["status"], report["validation_errors"][0]["field"]) == ("failed", "_upload"), what
    assert s3.list_objects_v2(Bucket=bucket, Prefix="raw/").get("Contents", []) == []
    for tenant in (shop, other_shop):
        listed = client.get(f"/api/v1/uploads/{ticket['upload_id']}", headers=tenant.auth)
        expected = (200, "pending") if tenant is shop else (404, None)
        assert (listed.status_code, listed.json().get("status")) == expected


def test_a_redelivered_notification_does_not_ingest_twice(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    ticket = _ticket(client, shop, "interactions")
    csv = b"user_id,item_id,interaction_type,timestamp\nu1,item_1,view,2025-01-01T10:00:00Z\n"
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    boto3.client("s3").put_object(Bucket=bucket, Key=ticket["key"], Body=csv)
    _deliver()

    again = ingest_dropped_file(ticket["key"], datetime.now(UTC))

    assert (again["status"], again["accepted"]) == ("success", 1)
    stored = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"raw/{shop.tenant_id}/interactions/")
    assert len(stored.get("Contents", [])) == 1


def test_hostile_dropped_files_get_a_short_failed_report(
    client: TestClient, shop: Shop, aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    header_bomb = b"item_id,title,category,price,brand," + b",".join(b"c%d" % i for i in range(40_000))
    tickets = [_ticket(client, shop, "items") for _ in range(2)]
    boto3.client("s3").put_object(Bucket=bucket, Key=tickets[0]["key"], Body=header_bomb + b"\ni,T,C,1,B\n")
    boto3.client("s3").put_object(Bucket=bucket, Key=tickets[1]["key"], Body=ITEMS_CSV * 10_000)
    monkeypatch.setattr(handler, "MAX_CSV_BYTES", len(header_bomb) + 1000)

    _deliver()

    for ticket, expected in zip(tickets, ("columns", "larger than"), strict=True):
        report = client.get(f"/api/v1/uploads/{ticket['upload_id']}", headers=shop.auth)
        assert report.json()["status"] == "failed"
        assert expected in report.json()["validation_errors"][0]["message"]
        assert len(report.content) < 2048
