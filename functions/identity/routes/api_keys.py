"""A tenant's API keys: create (secret shown once), list, revoke. Tenant admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from functions.http.dependencies import ClockDep
from functions.http.principal import ApiKeys, Callers, TenantAdmin, Tenants
from functions.identity.models import ApiKey
from functions.identity.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut
from functions.identity.service import create_api_key, revoke_api_key

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])
KeyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.key_id,
        name=key.name,
        key_prefix=key.key_prefix,
        permissions=sorted(key.permissions),
        status=key.status,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def post_api_key(
    body: ApiKeyCreate, principal: TenantAdmin, now: ClockDep, keys: ApiKeys, tenants: Tenants
) -> ApiKeyCreated:
    """Create a key. Copy ``key`` now: it is never shown again. 409 when the plan's active keys are taken."""
    key, secret = create_api_key(
        keys,
        tenants,
        tenant_id=principal.tenant_id,
        name=body.name,
        permissions=frozenset(body.permissions),
        now=now,
    )
    return ApiKeyCreated(**_out(key).model_dump(), key=secret)


@router.get("", response_model=ApiKeyList)
def get_api_keys(principal: TenantAdmin, keys: ApiKeys) -> ApiKeyList:
    """The tenant's keys, newest first (prefixes only)."""
    return ApiKeyList(api_keys=[_out(key) for key in keys.list_for_tenant(principal.tenant_id)])


@router.delete("/{key_id}", response_model=ApiKeyOut)
def delete_api_key(
    key_id: KeyId, principal: TenantAdmin, now: ClockDep, keys: ApiKeys, tenants: Tenants, callers: Callers
) -> ApiKeyOut:
    """Revoke a key: refused at once by this container, by every other within about a second. Idempotent."""
    revoked = revoke_api_key(keys, tenants, tenant_id=principal.tenant_id, key_id=key_id, now=now)
    callers.forget_key(key_id)
    return _out(revoked)
