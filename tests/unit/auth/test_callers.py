"""The per-container caller cache: warm requests skip table reads, revocations still bite."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from functions.auth.api_keys import generate_key
from functions.auth.callers import CallerResolver
from functions.common.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from functions.common.models import ApiKey, Permission, Plan, Tenant

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


def _setup() -> tuple[CallerResolver, FakeKeys, FakeTenants, Clock, str, ApiKey]:
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
        lambda: cast(Any, tenants), lambda: cast(Any, keys), lambda: "secret", ttl_s=5.0, clock=clock
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
