"""How an entry point builds the ingestion service from its settings (the api and ingest functions)."""

from __future__ import annotations

from datetime import timedelta

from functions.analytics.attribution import InteractionAttribution
from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.common import aws
from functions.common.settings import StorageSettings
from functions.ingestion.service import IngestionService
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import EventIdRepository, RecentEventsRepository
from functions.ingestion.store.uploads import UploadRepository


def build_ingestion_service(settings: StorageSettings) -> IngestionService:
    """The ingestion service over this deployment's tables and buckets, attributing to recommendations."""
    dynamodb, client = aws.dynamodb_resource(), aws.dynamodb_client()
    return IngestionService(
        DataStore(aws.s3_client(), settings.data_bucket),
        UploadRepository(dynamodb.Table(settings.uploads_table)),
        EventIdRepository(client, settings.event_ids_table, timedelta(days=settings.event_id_ttl_days)),
        RecentEventsRepository(
            client, settings.recent_events_table, timedelta(days=settings.recent_events_ttl_days)
        ),
        attribution=InteractionAttribution(
            AnalyticsCounters(client, settings.analytics_table),
            AbTestRepository(dynamodb.Table(settings.ab_tests_table)),
        ),
    )
