"""Login: e-mail and password for a JWT access token."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from functions.api.dependencies import ClockDep, SettingsDep, account_repository, jwt_secret
from functions.api.schemas import LoginRequest, LoginResponse
from functions.common import aws
from functions.identity.service import login
from functions.identity.throttling import LoginFailureRepository, LoginThrottle

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=LoginResponse,
    responses={429: {"description": "Too many failed logins for this e-mail; see Retry-After"}},
)
def post_login(body: LoginRequest, settings: SettingsDep, now: ClockDep) -> LoginResponse:
    """Exchange e-mail and password for an access token (``Authorization: Bearer <token>``)."""
    result = login(
        account_repository(),
        email=body.email,
        password=body.password,
        secret=jwt_secret(),
        now=now,
        ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        throttle=LoginThrottle(LoginFailureRepository(aws.dynamodb_client(), settings.event_ids_table)),
    )
    return LoginResponse(
        access_token=result.access_token,
        expires_in=result.expires_in,
        tenant_id=result.account.tenant_id,
        role=result.account.role,
    )
