"""Authentication and account logic: login, credential resolution, tenants, accounts and API keys.

Knows nothing of HTTP: routes call these functions with repositories and settings values.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from functions.common.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from functions.common.ids import new_id
from functions.identity.key_material import generate_key, hash_key, looks_like_api_key
from functions.identity.models import (
    API_KEY_LIMITS,
    Account,
    ApiKey,
    Permission,
    Plan,
    Principal,
    Role,
    Tenant,
)
from functions.identity.passwords import check_password_strength, dummy_hash, hash_password, verify_password
from functions.identity.store.accounts import AccountRepository
from functions.identity.store.api_keys import ApiKeyRepository
from functions.identity.store.tenants import TenantRepository
from functions.identity.throttling import LoginThrottle
from functions.identity.tokens import issue_access_token, verify_access_token

_USER_PERMISSIONS = frozenset({Permission.READ, Permission.WRITE})


@dataclass(frozen=True)
class LoginResult:
    """A successful login."""

    access_token: str
    expires_in: int
    account: Account


def create_tenant(
    tenants: TenantRepository, *, name: str, slug: str, plan: Plan, settings: dict[str, object], now: datetime
) -> Tenant:
    """Register a shop; ``ConflictError`` when the slug is taken."""
    tenant = Tenant(
        tenant_id=new_id("tenant"),
        name=name,
        slug=slug,
        plan=plan,
        status="active",
        settings=settings,
        created_at=now,
    )
    tenants.create(tenant)
    return tenant


def create_account(
    accounts: AccountRepository,
    tenants: TenantRepository,
    *,
    tenant_id: str,
    email: str,
    password: str,
    role: Role,
    now: datetime,
) -> Account:
    """Create a login for an existing tenant; the password must pass the strength rule."""
    try:
        tenants.get(tenant_id)
    except NotFoundError as exc:
        raise InvalidInputError(f"tenant '{tenant_id}' does not exist") from exc
    check_password_strength(password, email)
    account = Account(
        account_id=new_id("user"),
        tenant_id=tenant_id,
        email=email,
        role=role,
        password_hash=hash_password(password),
        created_at=now,
    )
    accounts.create(account)
    return account


def _authenticate(accounts: AccountRepository, email: str, password: str) -> Account:
    """The account whose password this is; the same ``AuthenticationError`` for every failure."""
    try:
        account = accounts.get_by_email(email)
    except NotFoundError:
        verify_password(dummy_hash(), password)  # equal cost, so timing does not reveal accounts
        raise AuthenticationError("invalid e-mail or password") from None
    if not verify_password(account.password_hash, password):
        raise AuthenticationError("invalid e-mail or password")
    return account


def login(
    accounts: AccountRepository,
    *,
    email: str,
    password: str,
    secret: str,
    now: datetime,
    ttl: timedelta,
    throttle: LoginThrottle | None = None,
) -> LoginResult:
    """Exchange e-mail and password for an access token. The same error for every failure.

    With a ``throttle``, each attempt first claims one of the e-mail's tries in the current window
    (atomically, across containers); once they are spent, every attempt is refused
    (``TooManyRequestsError``) before its password is even checked. A wrong password keeps its claim.
    """
    if throttle is not None:
        throttle.claim(email, now)
    account = _authenticate(accounts, email, password)
    if throttle is not None:
        throttle.succeeded(email)
    token = issue_access_token(
        secret=secret,
        account_id=account.account_id,
        tenant_id=account.tenant_id,
        role=account.role,
        now=now,
        ttl=ttl,
    )
    return LoginResult(access_token=token, expires_in=int(ttl.total_seconds()), account=account)


def resolve_principal(credential: str, *, secret: str, api_keys: ApiKeyRepository) -> Principal:
    """Who presents ``credential`` (a JWT or an API key); ``AuthenticationError`` if nobody valid."""
    if looks_like_api_key(credential):
        try:
            key = api_keys.find_by_hash(hash_key(credential))
        except NotFoundError as exc:
            raise AuthenticationError("the API key is invalid") from exc
        if key.status != "active":
            raise AuthenticationError("the API key has been revoked")
        return Principal(
            tenant_id=key.tenant_id,
            subject=key.key_id,
            kind="api_key",
            role=None,
            permissions=key.permissions,
        )
    claims = verify_access_token(credential, secret=secret)
    return Principal(
        tenant_id=claims.tenant_id,
        subject=claims.account_id,
        kind="user",
        role=claims.role,
        permissions=_USER_PERMISSIONS,
    )


def check_admin_key(credential: str, admin_key: str) -> None:
    """Accept only the platform admin key (constant-time comparison)."""
    if not hmac.compare_digest(credential.encode(), admin_key.encode()):
        raise AuthenticationError("platform admin credential required")


def create_api_key(
    api_keys: ApiKeyRepository,
    tenants: TenantRepository,
    *,
    tenant_id: str,
    name: str,
    permissions: frozenset[Permission],
    now: datetime,
) -> tuple[ApiKey, str]:
    """A new key for the tenant; returns the stored record and the secret, which is never stored.

    ``ConflictError`` when the tenant already holds its plan's number of active keys.
    """
    limit = API_KEY_LIMITS[tenants.get(tenant_id).plan]
    active = sum(1 for key in api_keys.list_for_tenant(tenant_id) if key.status == "active")
    if active >= limit:
        raise ConflictError(
            f"the plan allows {limit} active API keys and this tenant has {active}; revoke one first"
        )
    material = generate_key()
    key = ApiKey(
        key_id=new_id("key"),
        tenant_id=tenant_id,
        name=name,
        key_prefix=material.prefix,
        key_hash=material.key_hash,
        permissions=permissions,
        status="active",
        created_at=now,
    )
    api_keys.create(key)
    return key, material.secret


def revoke_api_key(
    api_keys: ApiKeyRepository, tenants: TenantRepository, *, tenant_id: str, key_id: str, now: datetime
) -> ApiKey:
    """Revoke a key and bump the tenant's credential generation, so every container re-reads its keys."""
    revoked = api_keys.revoke(tenant_id, key_id, now)
    tenants.bump_credential_generation(tenant_id)
    return revoked
