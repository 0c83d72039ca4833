"""The identity routes' collaborators in the api function: accounts, the login lockout, the admin key.

Tenants, API keys and the signing secret are the caller resolution's own (``functions.http.principal``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from functions.common import aws
from functions.common.container import per_container
from functions.common.secrets import resolve_secret
from functions.common.settings import get_api_settings
from functions.http.principal import BearerCredential
from functions.identity.callers import bearer_credential
from functions.identity.service import check_admin_key
from functions.identity.store.accounts import AccountRepository
from functions.identity.throttling import LoginFailureRepository, LoginThrottle


@per_container
def account_repository() -> AccountRepository:
    """The container's account repository."""
    return AccountRepository(aws.dynamodb_resource().Table(get_api_settings().accounts_table))


@per_container
def login_throttle() -> LoginThrottle:
    """The brute-force lockout (its counters live in DynamoDB, shared by every container)."""
    return LoginThrottle(LoginFailureRepository(aws.dynamodb_client(), get_api_settings().event_ids_table))


@per_container
def admin_key() -> str:
    """The platform admin key, resolved once per container (Secrets Manager in AWS)."""
    settings = get_api_settings()
    return resolve_secret(settings.admin_key, settings.admin_key_arn)


def platform_admin(creds: BearerCredential) -> None:
    """Only the platform admin key passes."""
    check_admin_key(bearer_credential(creds), admin_key())


Accounts = Annotated[AccountRepository, Depends(account_repository)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(login_throttle)]
#: For a router's ``dependencies=[...]``: every route below it needs the platform admin key.
PlatformAdmin = Depends(platform_admin)
