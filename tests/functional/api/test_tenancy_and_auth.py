"""Tenants, accounts, login and credential checks through the api app (moto in-process)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
from fastapi.testclient import TestClient

from tests.conftest import JWT_SECRET
from tests.functional.conftest import ADMIN_PASSWORD, Shop, admin_headers


def test_create_tenant_answers_the_walkthrough_shape(client: TestClient) -> None:
    response = client.post(
        "/api/admin/tenants",
        json={
            "name": "TechGadgets Store",
            "slug": "techgadgets",
            "plan": "pro",
            "settings": {"default_model": "lightgcn", "embedding_dimension": 64, "floor": 0.25},
        },
        headers=admin_headers(),
    )

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("tenant_")
    assert (body["name"], body["slug"], body["plan"], body["status"]) == (
        "TechGadgets Store",
        "techgadgets",
        "pro",
        "active",
    )
    assert body["settings"]["floor"] == 0.25
    assert body["created_at"].endswith("Z")


def test_platform_admin_calls_need_the_admin_key(client: TestClient, shop: Shop) -> None:
    body = {"name": "X", "slug": "xstore", "plan": "pro"}
    assert client.post("/api/admin/tenants", json=body).status_code == 401
    assert (
        client.post("/api/admin/tenants", json=body, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    # A tenant admin's JWT is not the platform admin credential.
    assert client.post("/api/admin/tenants", json=body, headers=shop.auth).status_code == 401


def test_duplicate_slug_and_email_are_conflicts(client: TestClient, shop: Shop) -> None:
    again = client.post(
        "/api/admin/tenants",
        json={"name": "Copy", "slug": "techgadgets", "plan": "pro"},
        headers=admin_headers(),
    )
    assert again.status_code == 409
    assert "techgadgets" in again.json()["detail"]

    dup_user = client.post(
        "/api/admin/users",
        json={"tenant_id": shop.tenant_id, "email": "ADMIN@techgadgets.com", "password": ADMIN_PASSWORD},
        headers=admin_headers(),
    )
    assert dup_user.status_code == 409


def test_user_creation_validates_input(client: TestClient, shop: Shop) -> None:
    cases = [
        ({"tenant_id": shop.tenant_id, "email": "a@b.co", "password": "short1!"}, "10 to 128"),
        ({"tenant_id": shop.tenant_id, "email": "a@b.co", "password": "alllowercaseletters"}, "three of"),
        ({"tenant_id": "tenant_missing", "email": "a@b.co", "password": ADMIN_PASSWORD}, "does not exist"),
        ({"tenant_id": shop.tenant_id, "email": "not-an-email", "password": ADMIN_PASSWORD}, "email"),
        (
            {"tenant_id": shop.tenant_id, "email": "a@b.co", "password": ADMIN_PASSWORD, "role": "root"},
            "role",
        ),
    ]
    for body, expected in cases:
        response = client.post("/api/admin/users", json=body, headers=admin_headers())
        assert response.status_code == 422, body
        assert expected in response.text


def test_login_issues_an_expiring_jwt(client: TestClient, shop: Shop) -> None:
    response = client.post("/api/v1/auth/login", json={"email": shop.email, "password": ADMIN_PASSWORD})

    assert response.status_code == 200
    body = response.json()
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], issuer="embedrec")
    assert claims["tenant_id"] == shop.tenant_id
    assert claims["role"] == "admin"
    assert 0 < claims["exp"] - time.time() <= body["expires_in"]


def test_login_refuses_wrong_password_and_unknown_email_alike(client: TestClient, shop: Shop) -> None:
    wrong = client.post("/api/v1/auth/login", json={"email": shop.email, "password": "WrongPass123!"})
    unknown = client.post("/api/v1/auth/login", json={"email": "nobody@x.io", "password": "WrongPass123!"})

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def _token(
    tenant_id: str,
    *,
    secret: str = JWT_SECRET,
    exp_delta: timedelta = timedelta(hours=1),
    algorithm: str = "HS256",
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": "user_x",
        "tenant_id": tenant_id,
        "role": "admin",
        "iss": "embedrec",
        "iat": int(now.timestamp()),
        "exp": int((now + exp_delta).timestamp()),
    }
    return jwt.encode(claims, secret if algorithm != "none" else None, algorithm=algorithm)


def test_expired_forged_and_unsigned_tokens_are_refused(client: TestClient, shop: Shop) -> None:
    tokens = {
        "expired": _token(shop.tenant_id, exp_delta=timedelta(seconds=-5)),
        "wrong key": _token(shop.tenant_id, secret="another-secret-another-secret-another"),
        "alg none": _token(shop.tenant_id, algorithm="none"),
        "garbage": "abc.def.ghi",
    }
    for name, token in tokens.items():
        response = client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (
        "expired"
        in client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {tokens['expired']}"}).json()[
            "detail"
        ]
    )


def test_a_valid_token_for_an_unknown_tenant_is_refused(client: TestClient, shop: Shop) -> None:
    response = client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {_token('tenant_ghost')}"})

    assert response.status_code == 401
    assert "tenant" in response.json()["detail"]


def test_missing_credential_is_401(client: TestClient) -> None:
    response = client.post(
        "/api/v1/interactions", json={"user_id": "u", "item_id": "i", "interaction_type": "view"}
    )

    assert response.status_code == 401
    assert "Authorization" in response.json()["detail"]


def test_tenant_settings_dynamodb_cannot_store_are_422(client: TestClient) -> None:
    for number in (-7.8e181, 1e-200):
        response = client.post(
            "/api/admin/tenants",
            headers=admin_headers(),
            json={"name": "Odd", "slug": "oddnumbers", "settings": {"nested": {"x": number}}},
        )
        assert response.status_code == 422, number
        assert "storable range" in response.text
