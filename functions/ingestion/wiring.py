"""How an entry point builds the ingestion service and the intake from its settings (api, ingest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from functions.analytics.attribution import InteractionAttribution
from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.common import aws
from functions.common.settings import StorageSettings
from functions.identity.store.tenants import TenantRepository
from functions.ingestion.intake import Intake
from functions.ingestion.service import IngestionService
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import EventIdRepository, RecentEventsRepository
from functions.ingestion.store.uploads import UploadRepository
from functions.training.schedule import TrainingSchedules

if TYPE_CHECKING:  # only the api function sends events: the drop folder's code path never does
    from functions.ingestion.store.event_queue import EventQueue


def build_ingestion_service(
    settings: StorageSettings, event_queue: EventQueue | None = None
) -> IngestionService:
    """The ingestion service over this deployment's tables and buckets, attributing to recommendations.

    ``event_queue``: where real-time JSON events are handed off (the api function's); without it they
    are compacted at once (``functions.ingestion.compaction``).
    """
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
        event_queue=event_queue,
    )


def build_intake(settings: StorageSettings, schedules: Callable[[], TrainingSchedules | None]) -> Intake:
    """The intake over this deployment's tables and buckets; ``schedules`` is called on first need."""
    dynamodb = aws.dynamodb_resource()
    return Intake(
        build_ingestion_service(settings),
        DataStore(aws.s3_client(), settings.data_bucket),
        TenantRepository(dynamodb.Table(settings.tenants_table)),
        UploadRepository(dynamodb.Table(settings.uploads_table)),
        schedules,
    )
