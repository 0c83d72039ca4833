"""The serving function's collaborators: its warm models and the recommendation service.

The caller is resolved by ``functions.http.principal`` (``Reader``), exactly as in the api function.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import faiss
from fastapi import Depends

from functions.analytics.impressions import ImpressionBuffer, ImpressionHandoff
from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.analytics.store.deliveries import DeliveryWriter
from functions.analytics.store.impressions_queue import ImpressionQueue
from functions.common import aws
from functions.common.container import per_container
from functions.serving.cache import ResponseCache
from functions.serving.catalog import CatalogViews
from functions.serving.domain import Ranking
from functions.serving.loader import load_bundle
from functions.serving.service import RecommendationService
from functions.serving.settings import get_serving_settings
from functions.serving.store.model_store import ModelStore
from functions.serving.store.storage import ObjectReader, RecentEventsReader, RegistryReader
from functions.serving.store.version_files import ModelDirectory


@per_container
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
        max_bytes=settings.model_budget_mb * 2**20,
        loader=partial(
            load_bundle, threads=settings.faiss_threads, directory=ModelDirectory(Path(settings.model_dir))
        ),
    )


@per_container
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
