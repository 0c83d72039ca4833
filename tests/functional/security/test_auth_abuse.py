"""Auth abuse: forged and revoked credentials on both apps, login lockout, and per-plan request quotas.

Extends ``tests/functional/api/test_tenancy_and_auth.py`` (expired / wrong-key / ``alg: none`` tokens on
the api app), without repeating it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import resources
from functions.common.errors import TooManyRequestsError
from functions.identity.models import Plan
from functions.identity.throttling import (
    LEASE_SHARE_S,
    LOGIN_MAX_FAILURES,
    LOGIN_WINDOW,
    PLAN_LIMITS,
    RequestQuotas,
    SharedQuotaStore,
)
from tests.conftest import JWT_SECRET
from tests.functional.conftest import ADMIN_PASSWORD, Shop, admin_headers
from tests.functional.security.conftest import create_key

WRONG = "Wrong-Pass-9876!"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _swap_claim(token: str, **changes: str) -> str:
    """The same token with payload claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join((header, _b64(json.dumps({**claims, **changes}).encode()), signature))


def _claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], issuer="embedrec")
    return decoded


# --- forged and revoked credentials -------------------------------------------------------------


def test_forged_tokens_are_refused_by_both_apps(
    client: TestClient, serving: TestClient, shop: Shop, other_shop: Shop
) -> None:
    claims = _claims(shop.token)
    now = datetime.now(UTC)
    forged = {
        "swapped tenant claim": _swap_claim(shop.token, tenant_id=other_shop.tenant_id),
        "escalated role": _swap_claim(shop.token, role="owner"),
        "HS512 with the right key": jwt.encode(claims, JWT_SECRET, algorithm="HS512"),
        "alg none": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "wrong key": jwt.encode(claims, "x" * 48, algorithm="HS256"),
        "expired": jwt.encode(
            {**claims, "exp": int((now - timedelta(seconds=1)).timestamp())}, JWT_SECRET, algorithm="HS256"
        ),
        "no tenant claim": jwt.encode(
            {k: v for k, v in claims.items() if k != "tenant_id"}, JWT_SECRET, algorithm="HS256"
        ),
        "foreign issuer": jwt.encode({**claims, "iss": "evil"}, JWT_SECRET, algorithm="HS256"),
        "unknown role": jwt.encode({**claims, "role": "root"}, JWT_SECRET, algorithm="HS256"),
        "truncated signature": shop.token[:-6],
        "fake API key": "sk_live_" + "A" * 40,
    }
    for name, token in forged.items():
        api = client.get("/api/v1/models", headers=_bearer(token))
        served = serving.get("/api/v1/health", headers=_bearer(token))
        assert (api.status_code, served.status_code) == (401, 401), name
        assert api.headers["WWW-Authenticate"] == served.headers["WWW-Authenticate"] == "Bearer", name
        assert other_shop.tenant_id not in api.text + served.text, name


def test_a_revoked_key_stops_in_a_warm_serving_container_within_the_cache_ttl(
    client: TestClient, serving: TestClient, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.serving.app import app as serving_app

    callers = serving_app.state.authenticator.callers
    key = create_key(client, shop, ["read"])
    assert serving.get("/api/v1/health", headers=_bearer(key["key"])).status_code == 200  # now cached

    revoked = client.delete(f"/api/v1/api-keys/{key['id']}", headers=shop.auth)
    later = callers.clock() + callers.ttl_s + 0.1
    monkeypatch.setattr(callers, "clock", lambda: later)

    assert revoked.status_code == 200
    assert client.get("/api/v1/models", headers=_bearer(key["key"])).status_code == 401  # at once
    assert serving.get("/api/v1/health", headers=_bearer(key["key"])).status_code == 401  # after the TTL


# --- brute-force login lockout ------------------------------------------------------------------


@pytest.fixture
def clock(client: TestClient) -> Iterator[list[datetime]]:
    """The api app's clock, pinned; tests move it by assigning ``clock[0]``."""
    from functions.api.app import app
    from functions.http.dependencies import utc_now

    pinned = [datetime(2026, 1, 5, 9, 0, tzinfo=UTC)]
    app.dependency_overrides[utc_now] = lambda: pinned[0]
    yield pinned
    app.dependency_overrides.pop(utc_now, None)


def _login(client: TestClient, email: str, password: str) -> int:
    status: int = client.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code
    return status


def test_login_locks_out_after_repeated_failures_until_the_window_passes(
    client: TestClient, shop: Shop, clock: list[datetime]
) -> None:
    start = clock[0]
    # Given N wrong passwords within the window (the case of the e-mail does not matter)
    for attempt in range(LOGIN_MAX_FAILURES):
        clock[0] = start + timedelta(seconds=10 * attempt)
        email = shop.email.upper() if attempt % 2 else shop.email
        assert _login(client, email, WRONG) == 401

    # When the right password is tried during the lockout
    clock[0] = start + timedelta(minutes=1)
    locked = client.post("/api/v1/auth/login", json={"email": shop.email, "password": ADMIN_PASSWORD})

    # Then 429, with the seconds left in the window that began at the first failure
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == int((LOGIN_WINDOW - timedelta(minutes=1)).total_seconds())
    assert locked.json()["error"] == "TooManyRequestsError"

    # And once the window has passed, the right password works again (and resets the count)
    clock[0] = start + LOGIN_WINDOW + timedelta(seconds=1)
    assert _login(client, shop.email, ADMIN_PASSWORD) == 200
    assert _login(client, shop.email, WRONG) == 401


def test_lockout_is_shared_by_containers_and_stored_with_a_ttl(
    client: TestClient, shop: Shop, clock: list[datetime], aws_env: LocalNames
) -> None:
    from functions.common.container import reset_container_state

    for _ in range(LOGIN_MAX_FAILURES):
        assert _login(client, shop.email, WRONG) == 401
    reset_container_state()  # another (cold) container answers the next attempt

    again = client.post("/api/v1/auth/login", json={"email": shop.email, "password": ADMIN_PASSWORD})

    assert again.status_code == 429
    table = boto3.resource("dynamodb").Table(aws_env.table(resources.EVENT_IDS))
    item = table.get_item(Key={"tenant_event": f"login#{shop.email}"})["Item"]
    assert (item["failures"], item["expires_at"]) == (
        LOGIN_MAX_FAILURES,
        int((clock[0] + LOGIN_WINDOW).timestamp()),
    )


def test_success_resets_the_count_and_other_emails_are_unaffected(
    client: TestClient, shop: Shop, other_shop: Shop, clock: list[datetime]
) -> None:
    for _ in range(LOGIN_MAX_FAILURES - 1):
        assert _login(client, shop.email, WRONG) == 401
    assert _login(client, shop.email, ADMIN_PASSWORD) == 200
    for _ in range(LOGIN_MAX_FAILURES - 1):
        assert _login(client, shop.email, WRONG) == 401
    assert _login(client, shop.email, ADMIN_PASSWORD) == 200
    assert clock  # the whole test happened within one window


def test_unknown_emails_lock_out_alike_so_lockout_reveals_no_accounts(
    client: TestClient, shop: Shop, clock: list[datetime]
) -> None:
    for email in ("nobody@nowhere.example", shop.email):
        answers = [_login(client, email, WRONG) for _ in range(LOGIN_MAX_FAILURES + 1)]
        assert answers == [401] * LOGIN_MAX_FAILURES + [429], email
    assert clock


def test_parallel_guesses_claim_at_most_the_allowed_tries_and_the_lockout_holds(
    client: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    from functions.common.container import reset_container_state

    # Given 32 wrong guesses sent at once (each claims its try before the password is checked)
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda _: _login(client, shop.email, WRONG), range(32)))

    # Then exactly the allowed number reached the password check; every other one was refused
    assert sorted(answers) == [401] * LOGIN_MAX_FAILURES + [429] * (32 - LOGIN_MAX_FAILURES)
    table = boto3.resource("dynamodb").Table(aws_env.table(resources.EVENT_IDS))
    item = table.get_item(Key={"tenant_event": f"login#{shop.email}"})["Item"]
    assert item["failures"] == LOGIN_MAX_FAILURES

    # And the right password is refused too, in this container and in a cold one
    reset_container_state()
    with ThreadPoolExecutor(max_workers=4) as pool:
        right = list(pool.map(lambda _: _login(client, shop.email, ADMIN_PASSWORD), range(4)))
    assert right == [429] * 4


# --- per-plan request quotas --------------------------------------------------------------------


def _shop_on_plan(client: TestClient, plan: Plan, slug: str) -> Shop:
    tenant = client.post(
        "/api/admin/tenants", json={"name": slug, "slug": slug, "plan": plan.value}, headers=admin_headers()
    )
    assert tenant.status_code == 201, tenant.text
    email = f"admin@{slug}.example"
    user = client.post(
        "/api/admin/users",
        json={"tenant_id": tenant.json()["id"], "email": email, "password": ADMIN_PASSWORD, "role": "admin"},
        headers=admin_headers(),
    )
    assert user.status_code == 201, user.text
    login = client.post("/api/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
    return Shop(tenant_id=tenant.json()["id"], email=email, token=login.json()["access_token"])


@pytest.fixture
def frozen_quotas(monkeypatch: pytest.MonkeyPatch, aws_env: LocalNames) -> list[float]:
    """Both apps' quota buckets on one controllable clock; tests move it by assigning ``[0]``."""
    from functions.api.app import app as api_app
    from functions.serving.app import app as serving_app

    now = [1_800_000_000.0]
    for app in (api_app, serving_app):  # two containers, one shared budget per tenant
        auth = app.state.authenticator
        monkeypatch.setattr(
            auth.callers, "quotas", RequestQuotas(clock=lambda: now[0], store=auth.quota_store)
        )
    return now


def test_free_plan_gets_429_with_retry_after_beyond_its_burst(
    client: TestClient, serving: TestClient, shop: Shop, frozen_quotas: list[float]
) -> None:
    free = _shop_on_plan(client, Plan.FREE, "freeshop")
    limit = PLAN_LIMITS[Plan.FREE]
    key = create_key(client, free, ["read"])["key"]  # one request of the burst
    credentials = [free.token, key]  # all of a tenant's credentials draw on one bucket

    answers = [
        client.get("/api/v1/models", headers=_bearer(credentials[i % 2])).status_code
        for i in range(limit.burst - 1)
    ]
    refused = client.get("/api/v1/models", headers=_bearer(key))
    served_refused = serving.get("/api/v1/health", headers=_bearer(key))

    assert answers == [200] * (limit.burst - 1)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "free plan" in refused.json()["detail"]
    # The serving container draws on the same budget (held in DynamoDB, not per process).
    assert served_refused.status_code == 429
    # Another tenant is untouched; time refills the bucket at the plan's rate.
    assert client.get("/api/v1/models", headers=shop.auth).status_code == 200
    frozen_quotas[0] += 1.0
    refilled = [
        client.get("/api/v1/models", headers=free.auth).status_code for _ in range(int(limit.rate_per_s) + 1)
    ]
    assert refilled == [200] * int(limit.rate_per_s) + [429]


def test_containers_share_one_budget_per_tenant(client: TestClient, aws_env: LocalNames) -> None:
    from functions.api.app import app as api_app

    quota_store = api_app.state.authenticator.quota_store

    # Given eight containers (each its own leases) and 64 parallel requests of one starter tenant
    starter = _shop_on_plan(client, Plan.STARTER, "starterfleet")
    limit = PLAN_LIMITS[Plan.STARTER]
    now = 1_800_000_000.0
    containers = [RequestQuotas(clock=lambda: now, store=quota_store) for _ in range(8)]

    def one(index: int) -> int:
        try:
            containers[index % 8].take(starter.tenant_id, Plan.STARTER)
        except TooManyRequestsError:
            return 429
        return 200

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(3 * limit.burst)))

    # Then together they admit at most the plan's burst (the clock is frozen: no refill), not 8 x it;
    # leases left unspent in a container are not handed to another
    assert 0 < answers.count(200) <= limit.burst
    assert answers.count(200) + answers.count(429) == 3 * limit.burst


class _StaleReads:
    """A DynamoDB client whose reads of the bucket always predate the other containers' writes: every
    versioned lease it attempts loses the race (the lockstep of cold containers leasing at once)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return {}  # as read before anyone created the bucket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_lease_that_loses_every_race_spends_the_stored_tokens_instead_of_refusing(
    client: TestClient, aws_env: LocalNames
) -> None:
    from functions.api.app import app as api_app

    shared = api_app.state.authenticator.quota_store()
    pro = PLAN_LIMITS[Plan.PRO]
    want = int(pro.rate_per_s * LEASE_SHARE_S)
    now = 1_800_000_000.0
    first = SharedQuotaStore(shared._client, shared._table_name)
    racing = SharedQuotaStore(_StaleReads(shared._client), shared._table_name)  # type: ignore[arg-type]

    # Given one container holding a lease, and others whose every versioned write loses
    assert first.lease("tenant_race", pro, want, now) == (want, 0.0)
    granted = [racing.lease("tenant_race", pro, want, now)[0] for _ in range((pro.burst - want) // want)]

    # Then they are served from the bucket (not refused while it is full), exactly down to empty
    assert granted == [want] * ((pro.burst - want) // want)
    assert racing.lease("tenant_race", pro, want, now)[0] == 0


def test_serving_enforces_the_plan_quota_too(
    client: TestClient, serving: TestClient, frozen_quotas: list[float]
) -> None:
    free = _shop_on_plan(client, Plan.FREE, "freeserve")
    answers = [
        serving.get("/api/v1/health", headers=free.auth).status_code
        for _ in range(PLAN_LIMITS[Plan.FREE].burst + 1)
    ]

    assert answers[-1] == 429 and set(answers[:-1]) == {200}
    assert frozen_quotas


def test_plans_are_ordered_and_unauthenticated_calls_spend_no_budget(
    client: TestClient, frozen_quotas: list[float]
) -> None:
    ordered = [PLAN_LIMITS[plan] for plan in (Plan.FREE, Plan.STARTER, Plan.PRO, Plan.ENTERPRISE)]
    assert [limit.rate_per_s for limit in ordered] == sorted(limit.rate_per_s for limit in ordered)
    free = _shop_on_plan(client, Plan.FREE, "freeanon")
    for _ in range(3 * PLAN_LIMITS[Plan.FREE].burst):
        assert client.get("/api/v1/models").status_code == 401
    assert client.get("/api/v1/models", headers=free.auth).status_code == 200
    assert frozen_quotas
