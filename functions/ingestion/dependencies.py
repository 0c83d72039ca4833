"""The ingestion routes' collaborators in the api function, each built once per container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from functions.common import aws
from functions.common.container import per_container
from functions.common.settings import get_api_settings
from functions.http.principal import Tenants
from functions.ingestion.intake import Intake
from functions.ingestion.service import IngestionService
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.event_queue import EventQueue
from functions.ingestion.store.uploads import UploadRepository
from functions.ingestion.wiring import build_ingestion_service
from functions.training.dependencies import training_schedules


@per_container
def upload_repository() -> UploadRepository:
    """The container's upload-record repository."""
    return UploadRepository(aws.dynamodb_resource().Table(get_api_settings().uploads_table))


@per_container
def data_store() -> DataStore:
    """The container's view of the data bucket."""
    return DataStore(aws.s3_client(), get_api_settings().data_bucket)


@per_container
def ingestion_service() -> IngestionService:
    """The container's ingestion service."""
    settings = get_api_settings()
    return build_ingestion_service(settings, EventQueue(aws.sqs_client(), settings.events_queue_url))


Uploads = Annotated[UploadRepository, Depends(upload_repository)]
Data = Annotated[DataStore, Depends(data_store)]
Ingestion = Annotated[IngestionService, Depends(ingestion_service)]


def intake(service: Ingestion, data: Data, tenants: Tenants, uploads: Uploads) -> Intake:
    """What the upload routes store through: dispatch by kind and format, and the after-effects."""
    return Intake(service, data, tenants, uploads, training_schedules)


IntakeDep = Annotated[Intake, Depends(intake)]
