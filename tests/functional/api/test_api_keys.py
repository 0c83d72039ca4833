"""API keys: shown once, stored hashed, listed by prefix, usable as bearer, revocable, permission-scoped."""

from __future__ import annotations

import hashlib

import boto3
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import resources
from tests.functional.conftest import Shop

ITEMS_CSV = (
    b"item_id,title,category,price,brand,description\n"
    b"item_0001,iPhone 15 Pro,Smartphones,999.99,Apple,Flagship\n"
)


def _create(client: TestClient, shop: Shop, permissions: list[str]) -> dict[str, str]:
    response = client.post(
        "/api/v1/api-keys",
        json={"name": "Production - Website", "permissions": permissions},
        headers=shop.auth,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_key_is_shown_once_and_stored_only_as_a_hash(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    created = _create(client, shop, ["read", "write"])

    assert created["key"].startswith(created["key_prefix"])
    assert created["key_prefix"].startswith("sk_live_")
    assert created["status"] == "active"
    listed = client.get("/api/v1/api-keys", headers=shop.auth).json()["api_keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    table = boto3.resource("dynamodb").Table(aws_env.table(resources.API_KEYS))
    stored = table.get_item(Key={"tenant_id": shop.tenant_id, "key_id": created["id"]})["Item"]
    assert created["key"] not in {str(v) for v in stored.values()}
    assert stored["key_hash"] == hashlib.sha256(created["key"].encode()).hexdigest()


def test_key_works_as_bearer_and_read_only_cannot_write(client: TestClient, shop: Shop) -> None:
    writer = _create(client, shop, ["read", "write"])
    reader = _create(client, shop, ["read"])

    ok = client.post(
        "/api/v1/items",
        files={"file": ("items.csv", ITEMS_CSV, "text/csv")},
        headers={"Authorization": f"Bearer {writer['key']}"},
    )
    denied = client.post(
        "/api/v1/items",
        files={"file": ("items.csv", ITEMS_CSV, "text/csv")},
        headers={"Authorization": f"Bearer {reader['key']}"},
    )

    assert ok.status_code == 200, ok.text
    assert denied.status_code == 403
    assert "read-only" in denied.json()["detail"]
    upload_id = ok.json()["upload_id"]
    assert (
        client.get(
            f"/api/v1/uploads/{upload_id}", headers={"Authorization": f"Bearer {reader['key']}"}
        ).status_code
        == 200
    )


def test_revoked_key_stops_working(client: TestClient, shop: Shop) -> None:
    key = _create(client, shop, ["read", "write"])
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (
        client.post(
            "/api/v1/items",
            json={"item_id": "item_1", "title": "T", "category": "Audio", "price": 1, "brand": "B"},
            headers=headers,
        ).status_code
        == 200
    )

    revoked = client.delete(f"/api/v1/api-keys/{key['id']}", headers=shop.auth)

    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    after = client.post(
        "/api/v1/items",
        json={"item_id": "item_2", "title": "T", "category": "Audio", "price": 1, "brand": "B"},
        headers=headers,
    )
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


def test_keys_cannot_manage_keys_and_tenants_cannot_see_each_others(
    client: TestClient, shop: Shop, other_shop: Shop
) -> None:
    key = _create(client, shop, ["read", "write"])

    as_key = client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {key['key']}"})
    other_list = client.get("/api/v1/api-keys", headers=other_shop.auth).json()["api_keys"]
    other_delete = client.delete(f"/api/v1/api-keys/{key['id']}", headers=other_shop.auth)

    assert as_key.status_code == 403
    assert other_list == []
    assert other_delete.status_code == 404
    assert client.get("/api/v1/api-keys", headers=shop.auth).json()["api_keys"][0]["status"] == "active"


def test_bad_key_requests_are_422(client: TestClient, shop: Shop) -> None:
    for body in (
        {"name": ""},
        {"name": "x", "permissions": ["admin"]},
        {"name": "x", "permissions": []},
        {"name": "x", "extra": 1},
    ):
        assert client.post("/api/v1/api-keys", json=body, headers=shop.auth).status_code == 422, body
    assert client.delete("/api/v1/api-keys/key_doesnotexist", headers=shop.auth).status_code == 404
