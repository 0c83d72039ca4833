"""FastAPI dependencies of the serving function: warm resources and the caller, resolved once per request.

The caller is authenticated exactly as in the api function (``functions.api.dependencies``, which this
module cannot import: it pulls in pyarrow): a JWT or an API key via
``functions.identity.service.resolve_principal``, the tenant must be active, and reading needs the
``read`` permission. The tenant comes from the credential and nowhere else.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Annotated

import faiss
from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from functions.analytics.impressions import ImpressionBuffer, ImpressionHandoff
from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.analytics.store.deliveries import DeliveryWriter
from functions.analytics.store.impressions_queue import ImpressionQueue
from functions.common import aws
from functions.common.secrets import resolve_secret
from functions.identity.callers import CallerResolver, bearer_credential, ensure_reader
from functions.identity.models import Principal
from functions.identity.store.api_keys import ApiKeyRepository
from functions.identity.store.tenants import TenantRepository
from functions.identity.throttling import RequestQuotas, SharedQuotaStore
from functions.serving.cache import ResponseCache
from functions.serving.catalog import CatalogViews
from functions.serving.domain import Ranking
from functions.serving.loader import load_bundle
from functions.serving.service import RecommendationService
from functions.serving.settings import get_serving_settings
from functions.serving.store.model_store import ModelStore
from functions.serving.store.storage import ObjectReader, RecentEventsReader, RegistryReader

_bearer = HTTPBearer(auto_error=False, description="A JWT from /api/v1/auth/login or an API key")


@lru_cache(maxsize=1)
def tenant_repository() -> TenantRepository:
    """The container's tenant repository."""
    return TenantRepository(aws.dynamodb_resource().Table(get_serving_settings().tenants_table))


@lru_cache(maxsize=1)
def api_key_repository() -> ApiKeyRepository:
    """The container's API key repository."""
    return ApiKeyRepository(aws.dynamodb_resource().Table(get_serving_settings().api_keys_table))


@lru_cache(maxsize=1)
def jwt_secret() -> str:
    """The token-signing secret, resolved once per container."""
    settings = get_serving_settings()
    return resolve_secret(settings.jwt_secret, settings.jwt_secret_arn)


@lru_cache(maxsize=1)
def model_store() -> ModelStore:
    """The container's warm models."""
    settings = get_serving_settings()
    faiss.omp_set_num_threads(settings.faiss_threads)
    return ModelStore(
        RegistryReader(aws.dynamodb_resource().Table(settings.model_registry_table)),
        ObjectReader(aws.s3_client(), settings.artifacts_bucket),
        ObjectReader(aws.s3_client(), settings.data_bucket),
        refresh_seconds=settings.model_refresh_seconds,
        max_tenants=settings.max_tenant_models,
        loader=partial(load_bundle, threads=settings.faiss_threads),
    )


@lru_cache(maxsize=1)
def recommendation_service() -> RecommendationService:
    """The container's serving logic."""
    settings = get_serving_settings()
    cache: ResponseCache[Ranking] = ResponseCache(
        settings.response_cache_max_entries, settings.response_cache_ttl_seconds
    )
    return RecommendationService(
        model_store(),
        RecentEventsReader(
            aws.dynamodb_client(),
            settings.recent_events_table,
            poll_seconds=settings.recent_events_poll_seconds,
            cache_entries=settings.recent_events_cache_entries,
        ),
        cache,
        recent_events_limit=settings.recent_events_limit,
        fold_in_half_life_hours=settings.fold_in_half_life_hours,
        ab_tests=AbTestRepository(aws.dynamodb_resource().Table(settings.ab_tests_table), cache_ttl_s=15),
        catalogs=CatalogViews(
            ObjectReader(aws.s3_client(), settings.data_bucket),
            check_seconds=settings.catalog_check_seconds,
            max_tenants=settings.max_tenant_models,
        ),
        # Handed off after every request, within its invocation (functions.serving.app): one SQS
        # message, applied to the table directly only when SendMessage fails.
        impressions=ImpressionBuffer(
            AnalyticsCounters(aws.dynamodb_client(), settings.analytics_table),
            handoff=ImpressionHandoff(
                ImpressionQueue(aws.sqs_client(), settings.impressions_queue_url),
                DeliveryWriter(aws.dynamodb_client(), settings.analytics_table),
            ),
        ),
    )


def flush_impressions() -> None:
    """Write what this container's requests collected (nothing to do before the service exists)."""
    if recommendation_service.cache_info().currsize:
        recommendation_service().flush_impressions()


def impressions_pending() -> bool:
    """Whether ``flush_impressions`` has anything to write (cheap: no I/O)."""
    return bool(recommendation_service.cache_info().currsize) and recommendation_service().impressions_pending


async def _service() -> RecommendationService:
    # Async dependencies run on the event loop; a sync one costs a worker-thread round trip per
    # request. Building the service (once per container) is the only work here.
    return recommendation_service()


ServiceDep = Annotated[RecommendationService, Depends(_service)]


def _quotas_enabled() -> bool:
    return get_serving_settings().request_quotas


@lru_cache(maxsize=1)
def quota_store() -> SharedQuotaStore:
    """Tenants' request budgets, shared by every container (``functions.identity.throttling``)."""
    return SharedQuotaStore(aws.dynamodb_client(), get_serving_settings().event_ids_table)


callers = CallerResolver(
    tenant_repository,
    api_key_repository,
    jwt_secret,
    quotas=RequestQuotas(store=quota_store),
    quotas_enabled=_quotas_enabled,
)


async def current_principal(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller (JWT or API key) of an active tenant, as in the api function.

    A caller this container already knows is resolved on the event loop (no I/O); only the first
    request of a credential or tenant window reads the tables, on a worker thread.
    """
    credential = bearer_credential(creds)
    warm = callers.resolve_warm(credential)
    return warm if warm is not None else await run_in_threadpool(callers.resolve, credential)


async def reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A caller allowed to read the tenant's data."""
    return ensure_reader(principal)


Reader = Annotated[Principal, Depends(reader)]


def reset_container_state() -> None:
    """Forget every warm resource, as a fresh (cold) container would. For tests and the local stack."""
    for factory in (
        get_serving_settings,
        tenant_repository,
        api_key_repository,
        jwt_secret,
        model_store,
        recommendation_service,
        aws.dynamodb_resource,
        aws.dynamodb_client,
        aws.s3_client,
        aws.sqs_client,
        quota_store,
    ):
        factory.cache_clear()
    callers.clear()
