"""Platform administration: tenants and their accounts (platform admin key only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from functions.http.dependencies import ClockDep
from functions.http.principal import Tenants
from functions.identity.dependencies import Accounts, PlatformAdmin
from functions.identity.schemas import AccountCreate, AccountOut, TenantCreate, TenantOut
from functions.identity.service import create_account, create_tenant
from functions.training.dependencies import Schedules
from functions.training.schedule import schedule_expression

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[PlatformAdmin])


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantOut)
def post_tenant(body: TenantCreate, now: ClockDep, tenants: Tenants, schedules: Schedules) -> TenantOut:
    """Create a tenant (a shop). The slug must be unique."""
    schedule_expression(body.settings)  # refuse a bad schedule before anything is created
    tenant = create_tenant(
        tenants, name=body.name, slug=body.slug, plan=body.plan, settings=body.settings, now=now
    )
    if schedules is not None:
        schedules.reconcile(tenant)  # created disabled; enabled by the tenant's first interactions
    return TenantOut(
        id=tenant.tenant_id,
        name=tenant.name,
        slug=tenant.slug,
        plan=tenant.plan,
        status=tenant.status,
        settings=tenant.settings,
        created_at=tenant.created_at,
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=AccountOut)
def post_user(body: AccountCreate, now: ClockDep, accounts: Accounts, tenants: Tenants) -> AccountOut:
    """Create a login for a tenant. E-mails are unique across the platform."""
    account = create_account(
        accounts,
        tenants,
        tenant_id=body.tenant_id,
        email=body.email,
        password=body.password,
        role=body.role,
        now=now,
    )
    return AccountOut(
        id=account.account_id,
        tenant_id=account.tenant_id,
        email=account.email,
        role=account.role,
        created_at=account.created_at,
    )
