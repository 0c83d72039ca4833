"""Hostile input through both apps: every case answers a JSON 4xx whose size does not grow with the input.

One test per class of attack (quadratic work, deep nesting, unbounded numbers, replays, broken quotes,
echoed input). ``make bench-hostile`` times the same cases (docs/reliability.md).
"""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from functions.identity.models import API_KEY_LIMITS, Plan
from tests.functional.conftest import Shop, admin_headers, make_shop
from tests.functional.security.conftest import create_key

BODY_LIMIT = 4096  # bytes: no error answer may grow with what was sent
EVENT = {"user_id": "u1", "item_id": "i1", "interaction_type": "purchase"}


def assert_bounded_json_4xx(response: httpx.Response, *statuses: int) -> dict[str, object]:
    """A 4xx (one of ``statuses`` when given) with a JSON body shorter than :data:`BODY_LIMIT`."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.content) < BODY_LIMIT, response.text[:300]
    body: dict[str, object] = response.json()
    return body


def _csv(shop: Shop, client: TestClient, kind: str, data: bytes) -> httpx.Response:
    return client.post(f"/api/v1/{kind}", content=data, headers={**shop.auth, "Content-Type": "text/csv"})


# --- 1. quadratic work from one small upload ----------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"item_id,title,category,price,brand," + b",".join(b"col%d" % i for i in range(40_000)),
        b"item_id,title,category,price,brand," + b",".join([b"dup"] * 40_000),
        b"item_id,title,category,price,brand," + b"x" * 300_000,
    ],
    ids=["made-up columns", "repeated columns", "one huge column name"],
)
def test_hostile_csv_headers_get_a_short_422(client: TestClient, shop: Shop, header: bytes) -> None:
    response = _csv(shop, client, "items", header + b"\ni1,T,C,1,B\n")

    body = assert_bounded_json_4xx(response, 422)
    assert body["error"] == "FileRejectedError"


def test_a_huge_line_or_field_gets_a_short_answer(client: TestClient, shop: Shop) -> None:
    huge_line = b"item_id,title,category,price,brand\ni1,T,C,1,B\ni2," + b"t" * 500_000 + b",C,1,B\n"
    huge_field = b"item_id,title,category,price,brand\n" + b"i" * 20_000 + b",T,C,1,B\n"

    assert_bounded_json_4xx(_csv(shop, client, "items", huge_line), 422)
    assert_bounded_json_4xx(_csv(shop, client, "items", huge_field), 422)


# --- 3. deep JSON nesting --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_gets_a_json_4xx_everywhere(
    client: TestClient, serving: TestClient, shop: Shop, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth
    in_object = b'{"user_id": "u1", "filters": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    targets = [
        (client, "/api/v1/interactions", nested),
        (client, "/api/v1/items", in_object),
        (client, "/api/v1/api-keys", in_object),
        (client, "/api/v1/auth/login", nested),
        (client, "/api/admin/ab-tests", in_object),
        (serving, "/api/v1/recommendations", in_object),
    ]
    for app, path, body in targets:
        response = app.post(path, content=body, headers={**shop.auth, "Content-Type": "application/json"})

        assert_bounded_json_4xx(response)


def test_json_bodies_with_too_many_keys_are_refused_before_parsing(client: TestClient, shop: Shop) -> None:
    # More keys than allowed (320,000) in a body below the upload cap (4,669,440 bytes)
    many = [EVENT | {f"k{j}": 1 for j in range(110)} for _ in range(3_000)]
    some = [EVENT | {f"k{j}": 1 for j in range(20)} for _ in range(1_000)]

    refused = client.post("/api/v1/interactions", json=many, headers=shop.auth)
    rejected = client.post("/api/v1/interactions", json=some, headers=shop.auth)

    assert "keys" in str(assert_bounded_json_4xx(refused, 422)["detail"])
    assert rejected.status_code == 422 and rejected.json()["rejected"] == 1_000
    assert all(len(e["message"]) < 200 for e in rejected.json()["validation_errors"])


# --- 4. unbounded numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        EVENT | {"revenue": 1e300},
        EVENT | {"context": {"revenue": 1e300}},
        EVENT | {"revenue": True},
        EVENT | {"rating": True},
        EVENT | {"context": {"position": True}},
        EVENT | {"revenue": int("9" * 4000)},
    ],
)
def test_absurd_or_boolean_numbers_in_events_are_rejected(
    client: TestClient, shop: Shop, event: dict[str, object]
) -> None:
    response = client.post("/api/v1/interactions", json=event, headers=shop.auth)

    body = assert_bounded_json_4xx(response, 422)
    assert body.get("accepted", 0) == 0


def test_absurd_price_is_rejected(client: TestClient, shop: Shop) -> None:
    item = {"item_id": "i1", "title": "T", "category": "C", "brand": "B"}

    assert_bounded_json_4xx(
        client.post("/api/v1/items", json=item | {"price": 1e300}, headers=shop.auth), 422
    )
    assert_bounded_json_4xx(client.post("/api/v1/items", json=item | {"price": True}, headers=shop.auth), 422)


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "u1", "count": True},
        {"user_id": "u1", "filters": {"min_price": True}},
        {"user_id": "u1", "filters": {"max_price": 1e300}},
    ],
)
def test_booleans_are_not_numbers_in_serving_requests(serving: TestClient, shop: Shop, body: object) -> None:
    response = serving.post("/api/v1/recommendations", json=body, headers=shop.auth)

    assert_bounded_json_4xx(response, 422)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/admin/ab-tests",
            {
                "name": "t",
                "variants": [
                    {"id": "a", "model_version": "v1", "traffic": True},
                    {"id": "b", "model_version": "v2", "traffic": 99},
                ],
            },
        ),
        ("/api/admin/ab-tests", {"name": "t", "variants": [], "duration_days": True}),
        ("/api/admin/training/trigger", {"config": {"epochs": True}}),
        ("/api/admin/training/trigger", {"config": {"learning_rate": True}}),
    ],
)
def test_booleans_are_not_numbers_in_api_requests(
    client: TestClient, shop: Shop, path: str, body: object
) -> None:
    response = client.post(path, json=body, headers=shop.auth)

    assert_bounded_json_4xx(response, 422)


@pytest.mark.parametrize(
    "settings", [{"embedding_dimension": True}, {"embedding_dimension": 1e300}, {"quality_floor": 2}]
)
def test_numeric_tenant_settings_are_bounded(client: TestClient, settings: dict[str, object]) -> None:
    body = {"name": "Odd", "slug": "odd-settings", "settings": settings}

    assert_bounded_json_4xx(client.post("/api/admin/tenants", json=body, headers=admin_headers()), 422)


# --- 5. replays ---------------------------------------------------------------------------------------


def test_a_replayed_event_is_reported_as_a_duplicate_not_accepted(client: TestClient, shop: Shop) -> None:
    event = EVENT | {"event_id": "evt-replayed-1"}

    answers = [client.post("/api/v1/interactions", json=event, headers=shop.auth) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert [(a.json()["accepted"], a.json()["duplicates"]) for a in answers] == [(1, 0)] + [(0, 1)] * 4
    batch = client.post(
        "/api/v1/interactions", json=[event, EVENT | {"event_id": "evt-new"}], headers=shop.auth
    )
    assert (batch.json()["accepted"], batch.json()["duplicates"], batch.json()["rejected"]) == (1, 1, 0)


# --- 6. broken quotes -------------------------------------------------------------------------------


def test_an_unclosed_quote_cannot_swallow_rows_silently(client: TestClient, shop: Shop) -> None:
    lines = [b"item_id,title,category,price,brand", b"a1,T,C,1,B", b'a2,"T,C,1,B']
    lines += [b"a%d,T,C,1,B" % i for i in range(3, 11)]

    response = _csv(shop, client, "items", b"\n".join(lines) + b"\n")

    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["rejected"]) == (1, 9)
    assert body["validation_errors"][0]["row"] == 2


# --- 8. error bodies sized by the attacker ------------------------------------------------------------


def test_validation_errors_do_not_echo_huge_input(
    client: TestClient, serving: TestClient, shop: Shop
) -> None:
    huge_list = {"name": "k", "permissions": ["admin"] * 100_000}
    long_id = "x" * 10_000
    answers = [
        client.post("/api/v1/api-keys", json=huge_list, headers=shop.auth),
        client.post("/api/v1/api-keys", json={"name": long_id}, headers=shop.auth),
        client.get(f"/api/v1/uploads/{long_id}", headers=shop.auth),
        client.get(f"/api/admin/training/status/{long_id}", headers=shop.auth),
        serving.post(
            "/api/v1/recommendations",
            json={"user_id": "u1", "filters": {"exclude_ids": [long_id] * 100_000}},
            headers=shop.auth,
        ),
        serving.post("/api/v1/recommendations", json={"user_id": long_id}, headers=shop.auth),
        serving.get(f"/api/v1/items/{long_id}/similar", headers=shop.auth),
        client.post("/api/v1/interactions", json=[EVENT | {"user_id": long_id}] * 2, headers=shop.auth),
    ]
    for response in answers:
        body = assert_bounded_json_4xx(response)
        assert long_id not in json.dumps(body)


# --- 7. weak or silently altered passwords --------------------------------------------------------


@pytest.mark.parametrize("password", ["Password1!", "Qwerty12345", "Welcome123!"])
def test_common_passwords_are_refused(client: TestClient, shop: Shop, password: str) -> None:
    response = client.post(
        "/api/admin/users",
        json={"tenant_id": shop.tenant_id, "email": "weak@techgadgets.com", "password": password},
        headers=admin_headers(),
    )

    body = assert_bounded_json_4xx(response, 422)
    assert "too easy to guess" in str(body["detail"])


def test_a_password_is_never_stripped(client: TestClient, shop: Shop) -> None:
    spaced = "  Spaced-Pass-4242  "
    created = client.post(
        "/api/admin/users",
        json={"tenant_id": shop.tenant_id, "email": "owner2@techgadgets.com", "password": spaced},
        headers=admin_headers(),
    )
    assert created.status_code == 201, created.text

    def login(password: str) -> int:
        body = {"email": "owner2@techgadgets.com", "password": password}
        return client.post("/api/v1/auth/login", json=body).status_code

    assert (login(spaced), login(spaced.strip())) == (200, 401)


# --- 9. a revoked key on a warm serving container ----------------------------------------------------


def test_a_revoked_key_stops_on_serving_within_the_tenant_ttl_not_the_key_ttl(
    client: TestClient, serving: TestClient, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.serving.app import app as serving_app

    callers = serving_app.state.authenticator.callers
    key = create_key(client, shop, ["read"])
    bearer = {"Authorization": f"Bearer {key['key']}"}
    assert serving.get("/api/v1/health", headers=bearer).status_code == 200  # now remembered

    revoked = client.delete(f"/api/v1/api-keys/{key['id']}", headers=shop.auth)
    later = callers.clock() + callers.tenant_ttl_s + 0.1
    monkeypatch.setattr(callers, "clock", lambda: later)

    assert revoked.status_code == 200
    assert later < callers.clock() + callers.ttl_s  # the key's own entry has not expired
    assert serving.get("/api/v1/health", headers=bearer).status_code == 401


# --- 10. API keys per tenant are capped by the plan ---------------------------------------------------


def test_api_keys_are_capped_per_plan(client: TestClient) -> None:
    free = make_shop(client, "freeshop", "owner@freeshop.example", plan="free")
    limit = API_KEY_LIMITS[Plan.FREE]
    keys = [create_key(client, free, ["read"]) for _ in range(limit)]

    refused = client.post("/api/v1/api-keys", json={"name": "one more"}, headers=free.auth)

    body = assert_bounded_json_4xx(refused, 409)
    assert f"allows {limit} active API keys" in str(body["detail"])
    assert client.delete(f"/api/v1/api-keys/{keys[0]['id']}", headers=free.auth).status_code == 200
    assert client.post("/api/v1/api-keys", json={"name": "replacement"}, headers=free.auth).status_code == 201
