"""Who is calling, for both apps: the bearer credential resolved once per request to a ``Principal``.

A JWT or an API key of an active tenant, within its plan's request quota (``functions.identity.callers``).
The tenant comes from the credential and nowhere else: routes receive a ``Principal`` and every
repository call is built from ``principal.tenant_id``.

Each app (one per Lambda container) installs one ``Authenticator`` built from its own settings
(``install_authenticator`` in ``create_app``); the dependencies below find it on the request's app. So
the api and serving functions share every line of caller resolution, and each still keeps its own warm
repositories and remembered callers, as two containers do (also where both apps share one process:
the local stack, the tests).
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from functions.common import aws
from functions.common.container import on_reset, per_container
from functions.common.errors import PermissionDeniedError
from functions.common.secrets import resolve_secret
from functions.http.invocation import run_blocking
from functions.identity.callers import CallerResolver, bearer_credential, ensure_reader, ensure_writer
from functions.identity.models import Principal
from functions.identity.store.api_keys import ApiKeyRepository
from functions.identity.store.tenants import TenantRepository
from functions.identity.throttling import RequestQuotas, SharedQuotaStore

_bearer = HTTPBearer(auto_error=False, description="A JWT from /api/v1/auth/login or an API key")
#: The ``Authorization: Bearer …`` credential, if any (``bearer_credential`` refuses a missing one).
BearerCredential = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class CallerSettings(Protocol):
    """What caller resolution reads from an app's settings (``ApiSettings``, ``ServingSettings``)."""

    @property
    def tenants_table(self) -> str: ...
    @property
    def api_keys_table(self) -> str: ...
    @property
    def event_ids_table(self) -> str: ...
    @property
    def jwt_secret(self) -> SecretStr | None: ...
    @property
    def jwt_secret_arn(self) -> str | None: ...
    @property
    def request_quotas(self) -> bool: ...


class SettingsSource(Protocol):
    """An app's cached settings getter (``get_api_settings``, ``get_serving_settings``)."""

    def __call__(self) -> CallerSettings: ...


class Authenticator:
    """One container's caller resolution: its warm tenant and key repositories, the token-signing
    secret, the tenants' shared request budgets and the resolver that remembers callers briefly.

    Each is built at first use, once per container (``functions.common.container``).
    """

    def __init__(self, settings: SettingsSource) -> None:
        self._settings = settings
        self.tenant_repository = per_container(self._tenant_repository)
        self.api_key_repository = per_container(self._api_key_repository)
        self.jwt_secret = per_container(self._jwt_secret)
        self.quota_store = per_container(self._quota_store)
        self.callers = CallerResolver(
            self.tenant_repository,
            self.api_key_repository,
            self.jwt_secret,
            quotas=RequestQuotas(store=self.quota_store),
            quotas_enabled=self._quotas_enabled,
        )
        on_reset(self.callers.clear)

    def _tenant_repository(self) -> TenantRepository:
        return TenantRepository(aws.dynamodb_resource().Table(self._settings().tenants_table))

    def _api_key_repository(self) -> ApiKeyRepository:
        return ApiKeyRepository(aws.dynamodb_resource().Table(self._settings().api_keys_table))

    def _jwt_secret(self) -> str:
        """Secrets Manager in AWS, read once per container."""
        settings = self._settings()
        return resolve_secret(settings.jwt_secret, settings.jwt_secret_arn)

    def _quota_store(self) -> SharedQuotaStore:
        """Tenants' request budgets, shared by every container (``functions.identity.throttling``)."""
        return SharedQuotaStore(aws.dynamodb_client(), self._settings().event_ids_table)

    def _quotas_enabled(self) -> bool:
        return self._settings().request_quotas


def install_authenticator(app: FastAPI, settings: SettingsSource) -> Authenticator:
    """Give ``app`` its callers' resolution (``create_app``; builds nothing until the first request)."""
    authenticator = Authenticator(settings)
    app.state.authenticator = authenticator
    return authenticator


async def authenticator(request: Request) -> Authenticator:
    """The request's app's ``Authenticator``."""
    found: Authenticator = request.app.state.authenticator
    return found


AppAuthenticator = Annotated[Authenticator, Depends(authenticator)]


async def current_principal(creds: BearerCredential, auth: AppAuthenticator) -> Principal:
    """The authenticated caller (JWT or API key) of an active tenant.

    A caller this container already knows is resolved on the event loop (no I/O); only the first
    request of a credential or tenant window reads the tables (``run_blocking``: on a worker thread
    under uvicorn, inline in a Lambda invocation).
    """
    credential = bearer_credential(creds)
    warm = auth.callers.resolve_warm(credential)
    return warm if warm is not None else await run_blocking(lambda: auth.callers.resolve(credential))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def reader(principal: CurrentPrincipal) -> Principal:
    """A caller allowed to read the tenant's data."""
    return ensure_reader(principal)


async def writer(principal: CurrentPrincipal) -> Principal:
    """A caller allowed to change the tenant's data."""
    return ensure_writer(principal)


async def tenant_admin(principal: CurrentPrincipal) -> Principal:
    """A human admin of the tenant (API keys cannot manage keys, users or models)."""
    if not principal.is_tenant_admin:
        raise PermissionDeniedError("this requires a tenant admin's login")
    return principal


Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
TenantAdmin = Annotated[Principal, Depends(tenant_admin)]


# The same warm objects, for routes that manage tenants and credentials (the api function). Plain
# ``def``: a first use builds a client or reads a secret, which must not block the event loop.


def tenant_repository(auth: AppAuthenticator) -> TenantRepository:
    """The container's tenant repository."""
    return auth.tenant_repository()


def api_key_repository(auth: AppAuthenticator) -> ApiKeyRepository:
    """The container's API key repository."""
    return auth.api_key_repository()


def jwt_secret(auth: AppAuthenticator) -> str:
    """The token-signing secret."""
    return auth.jwt_secret()


async def caller_resolver(auth: AppAuthenticator) -> CallerResolver:
    """The container's remembered callers (a revoked key is forgotten here at once)."""
    return auth.callers


Tenants = Annotated[TenantRepository, Depends(tenant_repository)]
ApiKeys = Annotated[ApiKeyRepository, Depends(api_key_repository)]
SigningSecret = Annotated[str, Depends(jwt_secret)]
Callers = Annotated[CallerResolver, Depends(caller_resolver)]
