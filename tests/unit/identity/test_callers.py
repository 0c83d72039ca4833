"""The per-container caller cache: warm requests skip table reads, revocations still bite."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from functions.common.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from functions.identity import callers as callers_module
from functions.identity.callers import CallerResolver
from functions.identity.key_material import generate_key
from functions.identity.models import ApiKey, Permission, Plan, Role, Tenant
from functions.identity.tokens import issue_access_token

NOW = datetime(2025, 1, 7, tzinfo=UTC)


class FakeKeys:
    """Stands in for ApiKeyRepository: a dict by hash, counting reads."""

    def __init__(self) -> None:
        self.by_hash: dict[str, ApiKey] = {}
        self.reads = 0

    def find_by_hash(self, key_hash: str) -> ApiKey:
        self.reads += 1
        if key_hash not in self.by_hash:
            raise NotFoundError("unknown API key")
        return self.by_hash[key_hash]


class FakeTenants:
    """Stands in for TenantRepository."""

    def __init__(self, *tenants: Tenant) -> None:
        self.tenants = {t.tenant_id: t for t in tenants}
        self.reads = 0

    def get(self, tenant_id: str) -> Tenant:
        self.reads += 1
        if tenant_id not in self.tenants:
            raise NotFoundError("no tenant")
        return self.tenants[tenant_id]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _setup(
    *, ttl_s: float = 5.0, tenant_ttl_s: float = 5.0
) -> tuple[CallerResolver, FakeKeys, FakeTenants, Clock, str, ApiKey]:
    keys, tenants, clock = (
        FakeKeys(),
        FakeTenants(Tenant("t1", "T", "t", Plan.PRO, "active", {}, NOW)),
        Clock(),
    )
    material = generate_key()
    stored = ApiKey(
        "key_1", "t1", "k", material.prefix, material.key_hash, frozenset({Permission.READ}), "active", NOW
    )
    keys.by_hash[material.key_hash] = stored
    resolver = CallerResolver(
        lambda: cast(Any, tenants),
        lambda: cast(Any, keys),
        lambda: "secret",
        ttl_s=ttl_s,
        tenant_ttl_s=tenant_ttl_s,
        clock=clock,
    )
    return resolver, keys, tenants, clock, material.secret, stored


def test_a_warm_key_costs_no_reads_until_the_ttl() -> None:
    resolver, keys, tenants, clock, secret, _ = _setup()

    for _ in range(3):
        assert resolver.resolve(secret).tenant_id == "t1"
    clock.now = 6.0
    resolver.resolve(secret)

    assert (keys.reads, tenants.reads) == (2, 2)


def test_revocation_bites_within_the_ttl_elsewhere_and_at_once_where_forgotten() -> None:
    resolver, keys, _, clock, secret, stored = _setup()
    resolver.resolve(secret)
    keys.by_hash[stored.key_hash] = replace(stored, status="revoked")

    assert resolver.resolve(secret).subject == "key_1"  # another container: still trusted for ≤ 5 s
    clock.now = 5.5
    with pytest.raises(AuthenticationError, match="revoked"):
        resolver.resolve(secret)
    keys.by_hash[stored.key_hash] = stored
    resolver.resolve(secret)
    resolver.forget_key("key_1")
    keys.by_hash[stored.key_hash] = replace(stored, status="revoked")
    with pytest.raises(AuthenticationError, match="revoked"):
        resolver.resolve(secret)


def test_suspended_or_missing_tenants_are_refused() -> None:
    resolver, _, tenants, _, secret, _ = _setup()
    tenants.tenants["t1"] = replace(tenants.tenants["t1"], status="suspended")

    with pytest.raises(PermissionDeniedError, match="suspended"):
        resolver.resolve(secret)
    del tenants.tenants["t1"]
    with pytest.raises(AuthenticationError, match="does not exist"):
        resolver.resolve(secret)


def _token(secret: str, lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    return issue_access_token(
        secret=secret, account_id="acc_1", tenant_id="t1", role=Role.ADMIN, now=now, ttl=lifetime
    )


def test_a_verified_token_is_remembered_until_the_ttl_and_never_past_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver, _keys, _tenants, clock, _secret, _ = _setup()
    verified: list[str] = []
    real_verify = callers_module.resolve_principal

    def counting(credential: str, **kwargs: Any) -> Any:
        verified.append(credential)
        return real_verify(credential, **kwargs)

    monkeypatch.setattr(callers_module, "resolve_principal", counting)
    token = _token("secret", timedelta(hours=1))

    assert resolver.resolve_warm(token) is None  # cold: the caller must take the I/O path
    assert resolver.resolve(token).subject == "acc_1"
    assert resolver.resolve_warm(token) == resolver.resolve(token)
    assert len(verified) == 1  # one signature check for the three calls
    clock.now = 6.0
    resolver.resolve(token)
    assert len(verified) == 2  # re-verified after the ttl

    # A token about to expire is kept only as long as it is valid; an expired one is refused
    short = _token("secret", timedelta(seconds=2))
    resolver.resolve(short)
    clock.now += 2.5
    assert resolver.resolve_warm(short) is None
    expired = _token("secret", timedelta(seconds=-1))
    with pytest.raises(AuthenticationError, match="expired"):
        resolver.resolve(expired)
    assert resolver.resolve_warm(expired) is None


def test_forged_tokens_are_never_remembered() -> None:
    resolver, *_ = _setup()
    forged = _token("not-the-secret", timedelta(hours=1))

    for _ in range(2):
        with pytest.raises(AuthenticationError):
            resolver.resolve(forged)
        assert resolver.resolve_warm(forged) is None


def test_an_expired_tenant_is_re_read_by_one_request_while_the_others_go_on() -> None:
    resolver, keys, tenants, clock, secret, _ = _setup()
    resolver.resolve(secret)
    clock.now = 6.0  # both the key and the tenant are past their ttl
    during: list[object] = []
    real_get = tenants.get

    def slow_get(tenant_id: str) -> Tenant:
        # Requests arriving while this read is in flight answer from memory, without a read
        during.append(resolver.resolve_warm(secret))
        return real_get(tenant_id)

    tenants.get = slow_get  # type: ignore[method-assign]
    assert resolver.resolve_warm(secret) is None  # nobody is re-reading yet: this request must
    resolver.resolve(secret)

    assert during and during[0] is not None
    assert (keys.reads, tenants.reads) == (2, 2)  # one read each, not one per request
    clock.now = 6.0 + 5.0 + 5.1  # past ttl and grace: nothing stale is served
    assert resolver.resolve_warm(secret) is None


def test_a_key_revoked_in_another_container_stops_within_the_tenant_ttl() -> None:
    resolver, keys, tenants, clock, secret, stored = _setup(ttl_s=60.0, tenant_ttl_s=1.0)
    resolver.resolve(secret)

    # Another container revokes the key: the key record changes and the tenant's generation goes up
    keys.by_hash[stored.key_hash] = replace(stored, status="revoked")
    tenants.tenants["t1"] = replace(tenants.tenants["t1"], credential_generation=1)

    assert resolver.resolve_warm(secret) is not None  # within the tenant ttl: still trusted
    clock.now = 1.5  # past the tenant ttl, far inside the key's 60 s
    assert resolver.resolve_warm(secret) is None
    with pytest.raises(AuthenticationError):
        resolver.resolve(secret)


def test_a_revocation_of_another_key_costs_one_key_read_and_keeps_the_caller() -> None:
    resolver, keys, tenants, clock, secret, _ = _setup()
    resolver.resolve(secret)
    tenants.tenants["t1"] = replace(tenants.tenants["t1"], credential_generation=1)
    clock.now = 5.5  # tenant re-read due (ttl 5 s in this setup); the key is within its grace

    assert resolver.resolve(secret).tenant_id == "t1"
    reads = keys.reads
    assert resolver.resolve_warm(secret) is not None  # re-remembered at the new generation
    assert keys.reads == reads
