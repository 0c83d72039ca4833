"""Who is calling: the bearer credential resolved to a principal of an active tenant.

Used by both functions through ``functions.http.principal`` (this module imports no pyarrow). A container
remembers, briefly, which tenants are active and which API keys are valid, so a warm request costs
no table read for either. A suspended tenant stops working within ``ttl_s`` in every container.
A revoked key stops at once in the container that revoked it, and within ``tenant_ttl_s`` (one second)
in every other: each revocation bumps the tenant's credential generation, which an API-key request
re-reads with the tenant record once the record is older than ``tenant_ttl_s``, and a remembered key of
an older generation is read again from the key table. (Logins are not revoked: their requests keep the
tenant record for ``ttl_s``.)
(A key resolved in the instant between its revocation and the generation's bump is the exception; its
entry still expires within ``ttl_s``.) Every resolved caller then draws on its tenant's plan quota
(``functions.identity.throttling``: leases from one bucket per tenant shared by all containers), so both
functions answer 429 alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi.security import HTTPAuthorizationCredentials

from functions.common.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from functions.common.in_flight import InFlight
from functions.identity.key_material import hash_key, looks_like_api_key
from functions.identity.models import Permission, Plan, Principal
from functions.identity.service import resolve_principal
from functions.identity.store.api_keys import ApiKeyRepository
from functions.identity.store.tenants import TenantRepository
from functions.identity.throttling import RequestQuotas
from functions.identity.tokens import token_lifetime_s

DEFAULT_TTL_S = 5.0
#: How old a tenant record (status, plan, credential generation) may be for an API-key request: the
#: revocation delay. One small GetItem per tenant per second per container (logins keep ``ttl_s``).
DEFAULT_TENANT_TTL_S = 1.0
#: Past its ttl, a remembered answer still serves other requests while ONE request re-reads it, for
#: at most this long: at a thousand requests a second an expiry must not send every request in flight
#: to the table at once (measured: that herd was the p99 of the serving benchmark).
REFRESH_GRACE_S = 5.0
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
    tenant_ttl_s: float = DEFAULT_TENANT_TTL_S
    clock: Callable[[], float] = time.monotonic
    quotas: RequestQuotas | None = field(default_factory=RequestQuotas)
    quotas_enabled: Callable[[], bool] = lambda: True  # read from settings by the entry point
    _tenants: dict[str, tuple[Plan, int, float]] = field(default_factory=dict)  # plan, generation, read at
    _keys: dict[str, tuple[Principal, float, int]] = field(default_factory=dict)  # generation resolved at
    _refreshing: InFlight = field(default_factory=InFlight)  # credential keys and tenant ids
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, credential: str) -> Principal:
        """The principal behind a JWT or API key, whose tenant is active and within its plan's quota."""
        remembered = self._remembered(credential)
        if remembered is not None:
            principal, generation = remembered
            plan, current = self._active_plan(principal.tenant_id, self._tenant_age(principal))
            if generation >= current:
                self._take_quota(principal, plan)
                return principal
        key = self._key(credential)
        with self._refreshing.reading(key):
            try:
                principal = resolve_principal(credential, secret=self.secret(), api_keys=self.api_keys())
            except AuthenticationError:
                with self._lock:
                    self._keys.pop(key, None)  # e.g. revoked elsewhere: no grace for it any more
                raise
            plan, current = self._active_plan(principal.tenant_id, self._tenant_age(principal))
            self._remember(credential, principal, current)
        self._take_quota(principal, plan)
        return principal

    def resolve_warm(self, credential: str) -> Principal | None:
        """``resolve`` when this container already knows the credential and its tenant; else None.

        Never does I/O, so an async route can call it on the event loop and hand only the cold
        case (a table read) to a worker thread. The answer is the one ``resolve`` would give.
        """
        remembered = self._remembered(credential)
        if remembered is None:
            return None
        principal, generation = remembered
        tenant = self._remembered_tenant(principal.tenant_id, self._tenant_age(principal))
        if tenant is None or generation < tenant[1]:
            return None  # the tenant is due a re-read, or a key of it was revoked since
        if not self._take_quota(principal, tenant[0], blocking=False):
            return None  # the container's quota lease must be renewed (one write): on a thread
        return principal

    def forget_key(self, key_id: str) -> None:
        """Stop trusting a key now (called where it was revoked)."""
        with self._lock:
            for key_hash in [h for h, (p, _, _) in self._keys.items() if p.subject == key_id]:
                del self._keys[key_hash]

    def clear(self) -> None:
        """Forget everything (a cold container)."""
        with self._lock:
            self._tenants.clear()
            self._keys.clear()
        if self.quotas is not None:
            self.quotas.clear()

    def _take_quota(self, principal: Principal, plan: Plan, *, blocking: bool = True) -> bool:
        if self.quotas is not None and self.quotas_enabled():
            return self.quotas.take(principal.tenant_id, plan, blocking=blocking)
        return True

    @staticmethod
    def _key(credential: str) -> str:
        return hash_key(credential) if looks_like_api_key(credential) else credential

    def _fresh_enough(self, key: str, until: float) -> bool:
        """Within its ttl, or within the grace while another request re-reads it (call with the lock)."""
        now = self.clock()
        return until > now or (key in self._refreshing and until + REFRESH_GRACE_S > now)

    def _remembered(self, credential: str) -> tuple[Principal, int] | None:
        """A principal resolved before and still trusted (an API key within ``ttl_s``, or a JWT
        whose signature was verified and that has not expired: only verified tokens are kept), with
        the tenant's credential generation it was resolved at."""
        key = self._key(credential)
        with self._lock:
            found = self._keys.get(key)
            return (found[0], found[2]) if found is not None and self._fresh_enough(key, found[1]) else None

    def _tenant_age(self, principal: Principal) -> float:
        """How old a tenant record may be for this caller: an API key must see revocations quickly."""
        return self.tenant_ttl_s if principal.kind == "api_key" else self.ttl_s

    def _remembered_tenant(self, tenant_id: str, max_age_s: float) -> tuple[Plan, int] | None:
        with self._lock:
            found = self._tenants.get(tenant_id)
            if found is None or not self._fresh_enough(tenant_id, found[2] + max_age_s):
                return None
            return found[0], found[1]

    def _remember(self, credential: str, principal: Principal, generation: int) -> None:
        now = self.clock()
        if principal.kind == "api_key":
            key, until = hash_key(credential), now + self.ttl_s
        else:
            lifetime = token_lifetime_s(credential)  # the signature was verified by resolve_principal
            key, until = credential, now + min(self.ttl_s, lifetime)
        with self._lock:
            if len(self._keys) >= _MAX_REMEMBERED:
                self._keys.clear()
            self._keys[key] = (principal, until, generation)

    def _active_plan(self, tenant_id: str, max_age_s: float) -> tuple[Plan, int]:
        """The plan and credential generation of the tenant, which must be active."""
        remembered = self._remembered_tenant(tenant_id, max_age_s)
        if remembered is not None:
            return remembered
        with self._refreshing.reading(tenant_id):
            try:
                tenant = self.tenants().get(tenant_id)
            except NotFoundError as exc:
                raise AuthenticationError("the credential's tenant does not exist") from exc
            if tenant.status != "active":
                with self._lock:
                    self._tenants.pop(tenant_id, None)
                raise PermissionDeniedError(f"tenant '{tenant_id}' is {tenant.status}")
            with self._lock:
                self._tenants[tenant_id] = (tenant.plan, tenant.credential_generation, self.clock())
        return tenant.plan, tenant.credential_generation


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
