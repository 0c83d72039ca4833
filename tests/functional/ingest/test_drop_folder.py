"""The S3 drop folder: a CSV put under incoming/ reaches the ingest handler through the queue."""

from __future__ import annotations

import io
import json

import boto3
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from embedrec_local.drop_folder import DropFolderPoller
from embedrec_local.provision import DROP_QUEUE, LocalNames
from embedrec_local.runner import LambdaRunner
from functions.common import resources
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


def test_dropped_csv_is_validated_stored_and_reported(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    key = resources.drop_key(shop.tenant_id, "items", "catalogue.csv")
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
