"""FastAPI dependencies: warm repositories, the clock, and the caller resolved once per request.

The tenant comes from the credential and nowhere else: routes receive a
``Principal`` and every repository call is built from ``principal.tenant_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.common import aws
from functions.common.errors import (
    PermissionDeniedError,
    ServiceUnavailableError,
)
from functions.common.secrets import resolve_secret
from functions.common.settings import ApiSettings, get_api_settings
from functions.identity.callers import CallerResolver, bearer_credential, ensure_reader, ensure_writer
from functions.identity.models import Principal
from functions.identity.service import check_admin_key
from functions.identity.store.accounts import AccountRepository
from functions.identity.store.api_keys import ApiKeyRepository
from functions.identity.store.tenants import TenantRepository
from functions.identity.throttling import RequestQuotas, SharedQuotaStore
from functions.ingestion.intake import Intake
from functions.ingestion.service import IngestionService
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import UploadRepository
from functions.ingestion.wiring import build_ingestion_service
from functions.training.control import Workflow
from functions.training.schedule import TrainingSchedules, configured_schedules
from functions.training.store.model_registry import ModelRegistry
from functions.training.store.training_jobs import TrainingJobRepository

_bearer = HTTPBearer(auto_error=False, description="A JWT from /api/v1/auth/login or an API key")

SettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]


def utc_now() -> datetime:
    """The request's clock (a dependency, so tests can pin time)."""
    return datetime.now(UTC)


ClockDep = Annotated[datetime, Depends(utc_now)]


@lru_cache(maxsize=1)
def tenant_repository() -> TenantRepository:
    """The container's tenant repository."""
    return TenantRepository(aws.dynamodb_resource().Table(get_api_settings().tenants_table))


@lru_cache(maxsize=1)
def account_repository() -> AccountRepository:
    """The container's account repository."""
    return AccountRepository(aws.dynamodb_resource().Table(get_api_settings().accounts_table))


@lru_cache(maxsize=1)
def api_key_repository() -> ApiKeyRepository:
    """The container's API key repository."""
    return ApiKeyRepository(aws.dynamodb_resource().Table(get_api_settings().api_keys_table))


@lru_cache(maxsize=1)
def upload_repository() -> UploadRepository:
    """The container's upload-record repository."""
    return UploadRepository(aws.dynamodb_resource().Table(get_api_settings().uploads_table))


@lru_cache(maxsize=1)
def data_store() -> DataStore:
    """The container's view of the data bucket."""
    return DataStore(aws.s3_client(), get_api_settings().data_bucket)


@lru_cache(maxsize=1)
def ingestion_service() -> IngestionService:
    """The container's ingestion service."""
    return build_ingestion_service(get_api_settings())


@lru_cache(maxsize=1)
def intake() -> Intake:
    """The container's intake: what the upload routes store through (after-effects included)."""
    return Intake(
        ingestion_service(), data_store(), tenant_repository(), upload_repository(), training_schedules
    )


@lru_cache(maxsize=1)
def analytics_counters() -> AnalyticsCounters:
    """The container's analytics counters."""
    return AnalyticsCounters(aws.dynamodb_client(), get_api_settings().analytics_table)


@lru_cache(maxsize=1)
def ab_tests_repository() -> AbTestRepository:
    """The container's A/B test store (uncached reads: the api function manages tests)."""
    return AbTestRepository(aws.dynamodb_resource().Table(get_api_settings().ab_tests_table))


@lru_cache(maxsize=1)
def training_jobs() -> TrainingJobRepository:
    """The container's training-job repository."""
    return TrainingJobRepository(aws.dynamodb_resource().Table(get_api_settings().training_jobs_table))


@lru_cache(maxsize=1)
def model_registry() -> ModelRegistry:
    """The container's model registry."""
    return ModelRegistry(aws.dynamodb_resource().Table(get_api_settings().model_registry_table))


@lru_cache(maxsize=1)
def workflow() -> Workflow:
    """The training workflow (``ServiceUnavailableError`` where it is not deployed)."""
    settings = get_api_settings()
    if not settings.state_machine_arn:
        raise ServiceUnavailableError("training is not configured on this deployment")
    return Workflow(aws.stepfunctions_client(), settings.state_machine_arn, settings.training_poll_seconds)


@lru_cache(maxsize=1)
def training_schedules() -> TrainingSchedules | None:
    """Per-tenant retraining schedules, or None where scheduling is not deployed."""
    settings = get_api_settings()
    return configured_schedules(
        settings.schedule_group,
        settings.scheduler_role_arn,
        settings.state_machine_arn,
        settings.training_window,
    )


@lru_cache(maxsize=1)
def jwt_secret() -> str:
    """The token-signing secret, resolved once per container (Secrets Manager in AWS)."""
    settings = get_api_settings()
    return resolve_secret(settings.jwt_secret, settings.jwt_secret_arn)


@lru_cache(maxsize=1)
def admin_key() -> str:
    """The platform admin key, resolved once per container."""
    settings = get_api_settings()
    return resolve_secret(settings.admin_key, settings.admin_key_arn)


def _quotas_enabled() -> bool:
    return get_api_settings().request_quotas


@lru_cache(maxsize=1)
def quota_store() -> SharedQuotaStore:
    """Tenants' request budgets, shared by every container (``functions.identity.throttling``)."""
    return SharedQuotaStore(aws.dynamodb_client(), get_api_settings().event_ids_table)


callers = CallerResolver(
    tenant_repository,
    api_key_repository,
    jwt_secret,
    quotas=RequestQuotas(store=quota_store),
    quotas_enabled=_quotas_enabled,
)


def current_principal(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller (JWT or API key) of an active tenant."""
    return callers.resolve(bearer_credential(creds))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def reader(principal: CurrentPrincipal) -> Principal:
    """A caller allowed to read the tenant's data."""
    return ensure_reader(principal)


def writer(principal: CurrentPrincipal) -> Principal:
    """A caller allowed to change the tenant's data."""
    return ensure_writer(principal)


def tenant_admin(principal: CurrentPrincipal) -> Principal:
    """A human admin of the tenant (API keys cannot manage keys, users or models)."""
    if not principal.is_tenant_admin:
        raise PermissionDeniedError("this requires a tenant admin's login")
    return principal


def platform_admin(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Only the platform admin key passes."""
    check_admin_key(bearer_credential(creds), admin_key())


Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
TenantAdmin = Annotated[Principal, Depends(tenant_admin)]
PlatformAdmin = Depends(platform_admin)


def reset_container_state() -> None:
    """Forget every warm resource, as a fresh (cold) container would. For tests and the local stack."""
    for factory in (
        get_api_settings,
        tenant_repository,
        account_repository,
        api_key_repository,
        upload_repository,
        data_store,
        ingestion_service,
        intake,
        analytics_counters,
        ab_tests_repository,
        training_jobs,
        model_registry,
        workflow,
        training_schedules,
        jwt_secret,
        admin_key,
        aws.dynamodb_resource,
        aws.dynamodb_client,
        aws.s3_client,
        quota_store,
        aws.stepfunctions_client,
        aws.batch_client,
        aws.scheduler_client,
    ):
        factory.cache_clear()
    callers.clear()
