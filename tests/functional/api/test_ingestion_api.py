"""Uploading items and interactions through the api app: reports, Parquet layout, upserts, idempotency."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from contract import layout
from embedrec_local.provision import LocalNames
from functions.common import resources
from tests.functional.conftest import Shop

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ingestion"
ITEMS_CSV = (
    b"item_id,title,category,price,brand,description\n"
    b"item_0001,iPhone 15 Pro,Smartphones,999.99,Apple,Latest flagship smartphone\n"
    b"item_0002,MacBook Pro,Laptops,2499.99,Apple,Professional laptop for creators\n"
    b"item_0003,AirPods Pro,Audio,249.99,Apple,Wireless earbuds with ANC\n"
)
INTERACTIONS_CSV = (
    b"user_id,item_id,interaction_type,timestamp,rating\n"
    b"user_0001,item_0001,purchase,2025-01-01T10:30:00Z,5.0\n"
    b"user_0001,item_0003,view,2025-01-01T10:25:00Z,\n"
    b"user_0002,item_0002,purchase,2025-01-01T11:00:00Z,5.0\n"
)


def _objects(bucket: str, prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def _read_parquet(bucket: str, key: str) -> list[dict[str, object]]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def test_csv_uploads_answer_the_walkthrough_report_and_land_as_parquet(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    items = client.post(
        "/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth
    )
    interactions = client.post(
        "/api/v1/interactions",
        files={"file": ("interactions.csv", INTERACTIONS_CSV, "text/csv")},
        headers=shop.auth,
    )

    assert items.status_code == interactions.status_code == 200
    for response, count in ((items, 3), (interactions, 3)):
        body = response.json()
        assert {k: body[k] for k in ("status", "accepted", "rejected", "validation_errors")} == {
            "status": "success",
            "accepted": count,
            "rejected": 0,
            "validation_errors": [],
        }
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    raw_items = _objects(bucket, f"raw/{shop.tenant_id}/items/")
    raw_interactions = _objects(bucket, f"raw/{shop.tenant_id}/interactions/")
    assert len(raw_items) == len(raw_interactions) == 1
    assert raw_interactions[0].endswith(f"{interactions.json()['upload_id']}.parquet")
    rows = _read_parquet(bucket, raw_interactions[0])
    assert [(r["user_id"], r["item_id"], r["interaction_type"]) for r in rows] == [
        ("user_0001", "item_0001", "purchase"),
        ("user_0001", "item_0003", "view"),
        ("user_0002", "item_0002", "purchase"),
    ]
    assert rows[0]["rating"] == 5.0 and rows[1]["rating"] is None


def test_partial_upload_keeps_good_rows_and_reports_bad_ones(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    csv = (
        b"item_id,title,category,price,brand,description\n"
        b"item_1,Good,Audio,10.00,Sony,ok\n"
        b"item_2,Negative,Audio,-5,Sony,bad price\n"
        b"item_3,Text price,Audio,abc,Sony,bad price\n"
        b"item_1,Duplicate,Audio,12.00,Sony,dup\n"
    )

    response = client.post("/api/v1/items", files={"file": ("items.csv", csv, "text/csv")}, headers=shop.auth)

    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["accepted"], body["rejected"]) == ("partial", 1, 3)
    assert {(e["row"], e["field"]) for e in body["validation_errors"]} >= {
        (2, "price"),
        (3, "price"),
        (4, "item_id"),
    }
    catalog = _read_parquet(aws_env.bucket(resources.DATA_BUCKET), resources.catalog_key(shop.tenant_id))
    assert [(r["item_id"], r["title"]) for r in catalog] == [("item_1", "Good")]


def test_items_upsert_by_item_id_across_uploads(client: TestClient, shop: Shop, aws_env: LocalNames) -> None:
    client.post("/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth)

    update = client.post(
        "/api/v1/items",
        json=[
            {
                "item_id": "item_0002",
                "title": "MacBook Pro M4",
                "category": "Laptops",
                "price": 2299.0,
                "brand": "Apple",
            },
            {
                "item_id": "item_0004",
                "title": "Galaxy S24",
                "category": "Smartphones",
                "price": "899.99",
                "brand": "Samsung",
            },
        ],
        headers=shop.auth,
    )

    assert update.status_code == 200, update.text
    catalog = _read_parquet(aws_env.bucket(resources.DATA_BUCKET), resources.catalog_key(shop.tenant_id))
    by_id = {r["item_id"]: r for r in catalog}
    assert sorted(by_id) == ["item_0001", "item_0002", "item_0003", "item_0004"]
    assert (by_id["item_0002"]["title"], by_id["item_0002"]["price"]) == ("MacBook Pro M4", 2299.0)


def test_json_events_with_context_are_stored_and_feed_recent_events(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    client.post("/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth)
    click = {
        "user_id": "user_0001",
        "item_id": "item_0002",
        "interaction_type": "click",
        "context": {"source": "recommendations", "position": 1, "recommendation_id": "rec_1"},
    }
    purchase = {
        "user_id": "user_0001",
        "item_id": "item_0002",
        "interaction_type": "purchase",
        "context": {"source": "recommendations", "revenue": 399.99},
    }

    responses = [client.post("/api/v1/interactions", json=e, headers=shop.auth) for e in (click, purchase)]

    assert [r.json()["accepted"] for r in responses] == [1, 1]
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    keys = _objects(bucket, f"raw/{shop.tenant_id}/interactions/")
    rows = [row for key in keys for row in _read_parquet(bucket, key)]
    stored = {r["interaction_type"]: r for r in rows}
    assert stored["click"]["source"] == "recommendations" and stored["click"]["position"] == 1
    assert stored["click"]["recommendation_id"] == "rec_1"
    assert stored["purchase"]["revenue"] == pytest.approx(399.99)
    feed = (
        boto3.resource("dynamodb")
        .Table(aws_env.table(resources.RECENT_EVENTS))
        .query(
            KeyConditionExpression="tenant_user = :u",
            ExpressionAttributeValues={":u": f"{shop.tenant_id}#user_0001"},
        )["Items"]
    )
    assert sorted(e["interaction_type"] for e in feed) == ["click", "purchase"]


def test_event_id_makes_retries_idempotent(client: TestClient, shop: Shop, aws_env: LocalNames) -> None:
    event = {"event_id": "evt-123", "user_id": "user_9", "item_id": "item_0001", "interaction_type": "view"}

    first = client.post("/api/v1/interactions", json=event, headers=shop.auth).json()
    retry = client.post("/api/v1/interactions", json=event, headers=shop.auth).json()

    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (retry["accepted"], retry["duplicates"], retry["status"]) == (0, 1, "success")
    bucket = aws_env.bucket(resources.DATA_BUCKET)
    rows = [
        r
        for key in _objects(bucket, f"raw/{shop.tenant_id}/interactions/")
        for r in _read_parquet(bucket, key)
    ]
    assert [r["event_id"] for r in rows] == ["evt-123"]


def test_unknown_items_are_warnings_and_still_stored(client: TestClient, shop: Shop) -> None:
    client.post("/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth)

    response = client.post(
        "/api/v1/interactions",
        json={"user_id": "u1", "item_id": "item_9999", "interaction_type": "view"},
        headers=shop.auth,
    )

    body = response.json()
    assert (body["status"], body["accepted"], body["rejected"]) == ("success", 1, 0)
    assert body["warnings"] and body["warnings"][0]["field"] == "item_id"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"item_id,title,category,price,brand,description\n", "no data rows"),
        (b"item_id,title,category,brand\nitem_1,T,Audio,Sony\n", "price"),
        (b"item_id,title,category,price,brand,colour\nitem_1,T,Audio,1,Sony,red\n", "colour"),
    ],
)
def test_whole_file_problems_are_422(client: TestClient, shop: Shop, content: bytes, expected: str) -> None:
    response = client.post(
        "/api/v1/items", files={"file": ("items.csv", content, "text/csv")}, headers=shop.auth
    )

    assert response.status_code == 422
    assert expected in response.text


def test_every_row_rejected_is_422_with_the_report(client: TestClient, shop: Shop) -> None:
    csv = (
        b"user_id,item_id,interaction_type,timestamp,rating\n"
        b"u1,i1,teleport,2025-01-01T00:00:00Z,\n"
        b"u2,i2,view,yesterday,\n"
    )

    response = client.post(
        "/api/v1/interactions", files={"file": ("i.csv", csv, "text/csv")}, headers=shop.auth
    )

    body = response.json()
    assert response.status_code == 422
    assert (body["status"], body["accepted"], body["rejected"]) == ("failed", 0, 2)
    assert {e["field"] for e in body["validation_errors"]} == {"interaction_type", "timestamp"}


def test_non_utf8_rows_are_rejected_row_by_row(client: TestClient, shop: Shop) -> None:
    csv = (
        b"item_id,title,category,price,brand,description\n"
        b"item_1,Caf\xe9 Speaker,Audio,10,Sony,latin-1 title\n"
        b"item_2,Fine Speaker,Audio,11,Sony,ok\n"
    )

    body = client.post("/api/v1/items", files={"file": ("i.csv", csv, "text/csv")}, headers=shop.auth).json()

    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["validation_errors"][0]["row"] == 1


def test_bad_bodies_are_clear_4xx(client: TestClient, shop: Shop) -> None:
    bad_json = client.post(
        "/api/v1/items", content=b"{not json", headers={**shop.auth, "Content-Type": "application/json"}
    )
    wrong_type = client.post(
        "/api/v1/items", content=b"<xml/>", headers={**shop.auth, "Content-Type": "application/xml"}
    )
    no_file = client.post(
        "/api/v1/items", files={"other": ("x.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth
    )

    assert bad_json.status_code == 422 and "JSON" in bad_json.json()["detail"]
    assert wrong_type.status_code == 422 and "content type" in wrong_type.json()["detail"]
    assert no_file.status_code == 422 and "'file'" in no_file.json()["detail"]


def test_oversized_body_is_413_with_the_upload_hint(client: TestClient, shop: Shop) -> None:
    big = ITEMS_CSV + b"item_x,T,Audio,1,Sony," + b"x" * (10 * 1024 * 1024) + b"\n"

    response = client.post("/api/v1/items", content=big, headers={**shop.auth, "Content-Type": "text/csv"})

    assert response.status_code == 413
    assert "/api/v1/uploads" in response.json()["detail"]


def test_tenants_never_see_each_others_uploads(
    client: TestClient, shop: Shop, other_shop: Shop, aws_env: LocalNames
) -> None:
    upload = client.post(
        "/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth
    )
    upload_id = upload.json()["upload_id"]

    assert client.get(f"/api/v1/uploads/{upload_id}", headers=other_shop.auth).status_code == 404
    assert client.get(f"/api/v1/uploads/{upload_id}", headers=shop.auth).json()["accepted"] == 3
    assert _objects(aws_env.bucket(resources.DATA_BUCKET), f"raw/{other_shop.tenant_id}/") == []


def test_seed_fixture_files_are_accepted_whole(client: TestClient, shop: Shop) -> None:
    items = (FIXTURES / "items_seed.csv").read_bytes()
    interactions = (FIXTURES / "interactions_seed.csv").read_bytes()

    first = client.post("/api/v1/items", files={"file": ("items.csv", items, "text/csv")}, headers=shop.auth)
    second = client.post(
        "/api/v1/interactions", files={"file": ("i.csv", interactions, "text/csv")}, headers=shop.auth
    )

    assert first.json()["status"] == second.json()["status"] == "success"


def test_uploads_keep_a_popular_items_document_for_serving(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    client.post("/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth)
    client.post(
        "/api/v1/interactions", files={"file": ("i.csv", INTERACTIONS_CSV, "text/csv")}, headers=shop.auth
    )
    more = b"user_id,item_id,interaction_type,timestamp\nu9,item_0003,purchase,2025-01-02T10:00:00Z\n"
    client.post("/api/v1/interactions", files={"file": ("more.csv", more, "text/csv")}, headers=shop.auth)
    # A real-time JSON event personalises at once but does not rewrite the popular list.
    client.post(
        "/api/v1/interactions",
        headers=shop.auth,
        json={"user_id": "u8", "item_id": "item_0002", "interaction_type": "purchase"},
    )

    body = (
        boto3.client("s3")
        .get_object(Bucket=aws_env.bucket(resources.DATA_BUCKET), Key=layout.popular_key(shop.tenant_id))[
            "Body"
        ]
        .read()
    )

    document = json.loads(body)
    # item_0001: purchase 5; item_0002: purchase 5; item_0003: view 1 + purchase 5 = 6.
    assert [e["item_id"] for e in document["overall"]] == ["item_0003", "item_0001", "item_0002"]
    assert document["overall"][0]["title"] == "AirPods Pro"
    assert list(document["by_category"]) == ["Audio", "Smartphones", "Laptops"]


def test_an_item_added_to_the_catalogue_stops_being_unknown(client: TestClient, shop: Shop) -> None:
    client.post("/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth)
    event = {"user_id": "u1", "item_id": "item_0042", "interaction_type": "view"}
    before = client.post("/api/v1/interactions", json=event, headers=shop.auth).json()

    client.post(
        "/api/v1/items",
        headers=shop.auth,
        json={"item_id": "item_0042", "title": "New", "category": "Audio", "price": 5, "brand": "Sony"},
    )
    after = client.post("/api/v1/interactions", json=event, headers=shop.auth).json()

    assert [w["field"] for w in before["warnings"]] == ["item_id"]
    assert after["warnings"] == []
