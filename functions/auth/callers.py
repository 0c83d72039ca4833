"""Who is calling: the bearer credential resolved to a principal of an active tenant.

Shared by the api and serving functions' dependencies (this module imports no pyarrow). A container
remembers, briefly, which tenants are active and which API keys are valid, so a warm request costs
no table read for either: a suspended tenant or a revoked key stops working within ``ttl_s`` in every
container, and at once in the one that handled the revocation. Every resolved caller then draws on its
tenant's plan quota (``functions.auth.throttling``), so both functions answer 429 alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi.security import HTTPAuthorizationCredentials

from functions.auth.api_keys import hash_key, looks_like_api_key
from functions.auth.service import resolve_principal
from functions.auth.throttling import RequestQuotas
from functions.common.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from functions.common.models import Permission, Plan, Principal
from functions.repositories.api_keys import ApiKeyRepository
from functions.repositories.tenants import TenantRepository

DEFAULT_TTL_S = 5.0
_MAX_REMEMBERED = 10_000


def bearer_credential(creds: HTTPAuthorizationCredentials | None) -> str:
    """The credential of ``Authorization: Bearer …``; ``AuthenticationError`` when there is none."""
    if creds is None or not creds.credentials:
        raise AuthenticationError("missing credential: send 'Authorization: Bearer <token or API key>'")
    return creds.credentials


@dataclass
class CallerResolver:
    """Resolves credentials for one container (factories give its warm repositories and secret)."""

    tenants: Callable[[], TenantRepository]
    api_keys: Callable[[], ApiKeyRepository]
    secret: Callable[[], str]
    ttl_s: float = DEFAULT_TTL_S
    clock: Callable[[], float] = time.monotonic
    quotas: RequestQuotas | None = field(default_factory=RequestQuotas)
    quotas_enabled: Callable[[], bool] = lambda: True  # read from settings by the entry point
    _tenants_until: dict[str, tuple[Plan, float]] = field(default_factory=dict)
    _keys: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, credential: str) -> Principal:
        """The principal behind a JWT or API key, whose tenant is active and within its plan's quota."""
        principal = self._remembered_key(credential) if looks_like_api_key(credential) else None
        if principal is None:
            principal = resolve_principal(credential, secret=self.secret(), api_keys=self.api_keys())
            if principal.kind == "api_key":
                self._remember_key(credential, principal)
        plan = self._active_plan(principal.tenant_id)
        if self.quotas is not None and self.quotas_enabled():
            self.quotas.take(principal.tenant_id, plan)
        return principal

    def forget_key(self, key_id: str) -> None:
        """Stop trusting a key now (called where it was revoked)."""
        with self._lock:
            for key_hash in [h for h, (p, _) in self._keys.items() if p.subject == key_id]:
                del self._keys[key_hash]

    def clear(self) -> None:
        """Forget everything (a cold container)."""
        with self._lock:
            self._tenants_until.clear()
            self._keys.clear()
        if self.quotas is not None:
            self.quotas.clear()

    def _remembered_key(self, credential: str) -> Principal | None:
        with self._lock:
            found = self._keys.get(hash_key(credential))
        return found[0] if found is not None and found[1] > self.clock() else None

    def _remember_key(self, credential: str, principal: Principal) -> None:
        with self._lock:
            if len(self._keys) >= _MAX_REMEMBERED:
                self._keys.clear()
            self._keys[hash_key(credential)] = (principal, self.clock() + self.ttl_s)

    def _active_plan(self, tenant_id: str) -> Plan:
        """The plan of the tenant, which must be active."""
        now = self.clock()
        remembered = self._tenants_until.get(tenant_id)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        try:
            tenant = self.tenants().get(tenant_id)
        except NotFoundError as exc:
            raise AuthenticationError("the credential's tenant does not exist") from exc
        if tenant.status != "active":
            raise PermissionDeniedError(f"tenant '{tenant_id}' is {tenant.status}")
        self._tenants_until[tenant_id] = (tenant.plan, now + self.ttl_s)
        return tenant.plan


def ensure_reader(principal: Principal) -> Principal:
    """The principal, if it may read the tenant's data."""
    if not principal.can(Permission.READ):
        raise PermissionDeniedError("this API key may not read; it needs the 'read' permission")
    return principal


def ensure_writer(principal: Principal) -> Principal:
    """The principal, if it may change the tenant's data."""
    if not principal.can(Permission.WRITE):
        raise PermissionDeniedError("this API key is read-only; it needs the 'write' permission")
    return principal
