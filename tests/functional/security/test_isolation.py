"""Tenant isolation matrix: every tenant-scoped route × tenant A's JWT, read key and write key vs B's data.

The routes are enumerated from both apps, so a new endpoint cannot be forgotten: it fails
``test_every_route_is_classified`` until it is classified in ``routes.py`` and given a case here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from tests.functional.conftest import Shop, admin_headers
from tests.functional.security import routes
from tests.functional.security.conftest import (
    VictimResources,
    build_victim,
    credentials_of,
)

A_ITEMS_CSV = b"item_id,title,category,price,brand\naitem_0001,Own Widget,Widgets,9.99,Ay\n"
SERVING_PATHS = frozenset(
    {"/api/v1/recommendations", "/api/v1/items/{item_id:path}/similar", "/api/v1/health"}
)


@dataclass(frozen=True)
class Probe:
    """One request of tenant A aimed at tenant B (``targets_b``: names one of B's resources)."""

    method: str
    path: str
    kwargs: dict[str, Any]
    targets_b: bool


def _probes(b: VictimResources) -> dict[routes.RouteKey, Probe]:
    """For each tenant-scoped route, the nastiest request A can make about B's data."""
    smuggled = {"tenant_id": b.tenant_id}
    # A's own items with B's tenant id smuggled in: B's content would be A's own catalogue once stored
    # (and served back to A), which the leak check could not tell from a leak.
    items = {"files": {"file": ("items.csv", A_ITEMS_CSV, "text/csv")}, "params": smuggled}
    event = {"user_id": b.user_id, "item_id": b.item_id, "interaction_type": "view", **smuggled}
    variants = [
        {"id": "control", "model_version": b.version, "traffic": 50},
        {"id": "treatment", "model_version": "two_tower_v7", "traffic": 50},
    ]
    table: dict[routes.RouteKey, Probe] = {
        ("POST", "/api/v1/api-keys"): Probe(
            "POST", "/api/v1/api-keys", {"json": {"name": "x", **smuggled}}, False
        ),
        ("GET", "/api/v1/api-keys"): Probe("GET", "/api/v1/api-keys", {"params": smuggled}, False),
        ("DELETE", "/api/v1/api-keys/{key_id}"): Probe("DELETE", f"/api/v1/api-keys/{b.key_id}", {}, True),
        ("POST", "/api/v1/items"): Probe("POST", "/api/v1/items", items, False),
        ("POST", "/api/v1/interactions"): Probe("POST", "/api/v1/interactions", {"json": event}, False),
        ("POST", "/api/v1/uploads"): Probe(
            "POST", "/api/v1/uploads", {"json": {"kind": "items", **smuggled}}, False
        ),
        ("GET", "/api/v1/uploads/{upload_id}"): Probe("GET", f"/api/v1/uploads/{b.upload_id}", {}, True),
        # Acts on A's own shoppers: B's shopper of the same id must keep their interactions.
        ("DELETE", "/api/v1/users/{user_id:path}"): Probe(
            "DELETE", f"/api/v1/users/{b.shopper_id}", {}, False
        ),
        ("POST", "/api/v1/users/erase"): Probe(
            "POST", "/api/v1/users/erase", {"json": {"user_id": b.shopper_id, **smuggled}}, False
        ),
        # A's catalogue has no such item: B's item of that id stays (404 for A).
        ("DELETE", "/api/v1/items/{item_id:path}"): Probe("DELETE", f"/api/v1/items/{b.item_id}", {}, True),
        ("POST", "/api/admin/training/trigger"): Probe(
            "POST", "/api/admin/training/trigger", {"json": smuggled}, True
        ),
        ("GET", "/api/admin/training/status/{job_id}"): Probe(
            "GET", f"/api/admin/training/status/{b.job_id}", {}, True
        ),
        ("GET", "/api/admin/training/model-types"): Probe(
            "GET", "/api/admin/training/model-types", {"params": smuggled}, False
        ),
        ("GET", "/api/v1/models"): Probe("GET", "/api/v1/models", {"params": smuggled}, False),
        ("POST", "/api/v1/models/{version}/activate"): Probe(
            "POST", f"/api/v1/models/{b.version}/activate", {}, True
        ),
        ("GET", "/api/v1/analytics/summary"): Probe(
            "GET", "/api/v1/analytics/summary", {"params": smuggled}, False
        ),
        ("GET", "/api/v1/analytics/top-products"): Probe(
            "GET", "/api/v1/analytics/top-products", {"params": smuggled}, False
        ),
        ("POST", "/api/admin/ab-tests"): Probe(
            "POST",
            "/api/admin/ab-tests",
            {"json": {"name": "steal", "variants": variants, "metric": "ctr", "duration_days": 7}},
            True,  # B's model versions do not exist in A's registry
        ),
        ("GET", "/api/admin/ab-tests"): Probe("GET", "/api/admin/ab-tests", {"params": smuggled}, False),
        ("GET", "/api/admin/ab-tests/{test_id}"): Probe("GET", f"/api/admin/ab-tests/{b.test_id}", {}, True),
        ("POST", "/api/admin/ab-tests/{test_id}/stop"): Probe(
            "POST", f"/api/admin/ab-tests/{b.test_id}/stop", {}, True
        ),
        ("GET", "/api/admin/ab-tests/{test_id}/results"): Probe(
            "GET", f"/api/admin/ab-tests/{b.test_id}/results", {}, True
        ),
        ("POST", "/api/v1/recommendations"): Probe(
            "POST", "/api/v1/recommendations", {"json": {"user_id": b.user_id, "count": 5}}, False
        ),
        ("GET", "/api/v1/items/{item_id:path}/similar"): Probe(
            "GET", f"/api/v1/items/{b.item_id}/similar", {"params": smuggled}, True
        ),
        ("GET", "/api/v1/health"): Probe("GET", "/api/v1/health", {"params": smuggled}, False),
    }
    return table


def _apps() -> list[FastAPI]:
    from functions.api.app import app as api_app
    from functions.serving.app import app as serving_app

    return [api_app, serving_app]


def test_every_route_is_classified(aws_env: LocalNames) -> None:
    found = [key for app in _apps() for key in routes.api_routes(app)]
    unclassified = [key for key in found if routes.classify(key) == "unclassified"]
    stale = (routes.PUBLIC | routes.PLATFORM_ADMIN | set(routes.TENANT)) - set(found)
    others = set().union(*(routes.other_routes(app) for app in _apps()))

    assert unclassified == [], f"classify these routes in tests/functional/security/routes.py: {unclassified}"
    assert stale == set(), f"routes.py names routes that no longer exist: {stale}"
    assert others <= routes.DOCS_PATHS, f"unexpected non-API routes: {others - routes.DOCS_PATHS}"
    assert set(routes.TENANT) == set(_probes(_dummy_victim())), "every tenant route needs a probe"


def _dummy_victim() -> VictimResources:
    return VictimResources("t", "k", "p", "u", "j", "ab_x", "lightgcn_v1", "i", "u", "s")


def _expected(access: routes.Access, kind: str, probe: Probe) -> set[int]:
    if kind != "jwt" and access == "admin":
        return {403}  # API keys never do admin work, whoever's data it is
    if kind == "read_key" and access == "write":
        return {403}
    if probe.targets_b:
        return {403, 404, 422}  # 422: B's model versions are unknown to A's A/B-test validation
    return {200, 201, 202, 409, 422}


def _leaks(text: str, b: VictimResources, world: synthetic.SyntheticWorld, probe: Probe) -> list[str]:
    """B's identifiers in A's answer, except those A itself sent (422s and 404s echo the request)."""
    sent = f"{probe.path} {probe.kwargs!r}"
    found = [marker for marker in b.markers() if marker in text and marker not in sent]
    path = _template(probe.path)
    if path in SERVING_PATHS and text.startswith("{"):
        body = json.loads(text)
        lists = [body.get(key, []) for key in ("recommendations", "similar_items")]
        served = [entry.get("item_id") for entries in lists for entry in entries]
        found += [item for item in served if item in set(world.item_ids.tolist())]
    return found


def _template(path: str) -> str:
    return "/api/v1/items/{item_id:path}/similar" if path.endswith("/similar") else path


def _send(clients: dict[str, TestClient], probe: Probe, token: str) -> Any:
    client = clients["serving" if _template(probe.path) in SERVING_PATHS else "api"]
    headers = {"Authorization": f"Bearer {token}"}
    return client.request(probe.method, probe.path, headers=headers, **probe.kwargs)


def test_tenant_a_cannot_reach_tenant_b(
    client: TestClient,
    serving: TestClient,
    aws_env: LocalNames,
    shop: Shop,
    other_shop: Shop,
    small_world: synthetic.SyntheticWorld,
) -> None:
    # Given B with data of every kind, and A's three credentials
    b = build_victim(client, serving, aws_env, other_shop, small_world)
    a = credentials_of(client, shop)
    clients = {"api": client, "serving": serving}

    # When A calls every tenant-scoped route about B's data with each credential
    failures: list[str] = []
    cases = 0
    for key, probe in _probes(b).items():
        access = routes.TENANT[key]
        for kind, token in a.by_kind().items():
            response = _send(clients, probe, token)
            cases += 1
            if response.status_code not in _expected(access, kind, probe):
                answer = f"{response.status_code} {response.text[:200]}"
                failures.append(f"{kind} {probe.method} {probe.path}: {answer}")
            leaked = _leaks(response.text, b, small_world, probe)
            if leaked:
                failures.append(f"{kind} {probe.method} {probe.path} leaked {leaked}: {response.text[:200]}")

    # Then nothing was allowed or shown, and B's data is intact
    assert failures == []
    assert cases == 3 * len(routes.TENANT)
    _assert_b_intact(client, other_shop, b)


def _assert_b_intact(client: TestClient, other_shop: Shop, b: VictimResources) -> None:
    keys = client.get("/api/v1/api-keys", headers=other_shop.auth).json()["api_keys"]
    assert {k["id"]: k["status"] for k in keys}[b.key_id] == "active"
    test = client.get(f"/api/admin/ab-tests/{b.test_id}", headers=other_shop.auth).json()
    assert test["status"] == "running"
    assert client.get("/api/v1/models", headers=other_shop.auth).json()["active_version"] == b.version
    assert client.get(f"/api/v1/uploads/{b.upload_id}", headers=other_shop.auth).status_code == 200
    assert client.get(f"/api/admin/training/status/{b.job_id}", headers=other_shop.auth).status_code == 200
    erased = client.delete(f"/api/v1/users/{b.shopper_id}", headers=other_shop.auth)
    assert erased.status_code == 200, erased.text
    assert erased.json()["interactions_deleted"] == 1  # A's erasures of the same id did not touch B


@pytest.mark.parametrize("kind", ["jwt", "read_key", "write_key"])
def test_tenant_credentials_never_pass_platform_admin_routes(
    client: TestClient, shop: Shop, kind: str
) -> None:
    token = credentials_of(client, shop).by_kind()[kind]
    headers = {"Authorization": f"Bearer {token}"}
    bodies = {
        "/api/admin/tenants": {"name": "Evil", "slug": "evilcorp", "plan": "enterprise"},
        "/api/admin/users": {
            "tenant_id": shop.tenant_id,
            "email": "evil@x.io",
            "password": "Evil-Pass-1234!",
        },
    }
    for method, path in sorted(routes.PLATFORM_ADMIN):
        assert client.request(method, path, json=bodies[path], headers=headers).status_code == 401, path


def test_every_tenant_route_needs_a_credential(client: TestClient, serving: TestClient) -> None:
    dummy = _probes(_dummy_victim())
    for key in routes.TENANT:
        probe = dummy[key]
        target = serving if key[1] in SERVING_PATHS else client
        response = target.request(probe.method, probe.path, **probe.kwargs)
        assert response.status_code == 401, key


def test_admin_key_is_not_a_tenant_credential(client: TestClient, serving: TestClient) -> None:
    assert client.get("/api/v1/api-keys", headers=admin_headers()).status_code == 401
    assert serving.get("/api/v1/health", headers=admin_headers()).status_code == 401
