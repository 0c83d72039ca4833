"""Login: e-mail and password for a JWT access token."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from functions.http.dependencies import ClockDep, SettingsDep
from functions.http.principal import SigningSecret
from functions.identity.dependencies import Accounts, LoginThrottleDep
from functions.identity.schemas import LoginRequest, LoginResponse
from functions.identity.service import login

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=LoginResponse,
    responses={429: {"description": "Too many failed logins for this e-mail; see Retry-After"}},
)
def post_login(
    body: LoginRequest,
    settings: SettingsDep,
    now: ClockDep,
    accounts: Accounts,
    secret: SigningSecret,
    throttle: LoginThrottleDep,
) -> LoginResponse:
    """Exchange e-mail and password for an access token (``Authorization: Bearer <token>``)."""
    result = login(
        accounts,
        email=body.email,
        password=body.password,
        secret=secret,
        now=now,
        ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        throttle=throttle,
    )
    return LoginResponse(
        access_token=result.access_token,
        expires_in=result.expires_in,
        tenant_id=result.account.tenant_id,
        role=result.account.role,
    )
