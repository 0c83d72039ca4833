"""The ``ingest`` function: CSV files dropped under ``incoming/{tenant}/{items|interactions}/``.

Triggered by S3 notifications delivered through SQS (retries and a dead-letter queue for free).
Applies the same validation as the API upload, writes the Parquet, and puts the JSON report next
to the file (``<file>.report.json``) and in the tenant's upload records.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common import aws, resources
from functions.common.container import per_container
from functions.common.errors import (
    FileRejectedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from functions.common.observability import MetricUnit, logger, metrics
from functions.common.settings import get_ingest_settings
from functions.identity.store.tenants import TenantRepository
from functions.ingestion.schema import MAX_CSV_BYTES
from functions.ingestion.service import IngestionService, Kind
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import PENDING, UploadRepository
from functions.ingestion.wiring import build_ingestion_service
from functions.training.schedule import TrainingSchedules, configured_schedules, on_interactions_stored

_DROP_KEY = re.compile(
    r"^"
    + re.escape(resources.DROP_FOLDER_PREFIX)
    + r"(?P<tenant>[A-Za-z0-9_-]+)/(?P<kind>items|interactions)/"
    r"(?P<name>[^/]+\.csv)$"
)
_UPLOAD_NAME = re.compile(r"^(upload_[0-9a-f]{12})\.csv$")


@per_container
def _service() -> tuple[IngestionService, DataStore, TenantRepository, UploadRepository]:
    settings = get_ingest_settings()
    service = build_ingestion_service(settings)
    store = DataStore(aws.s3_client(), settings.data_bucket)
    dynamodb = aws.dynamodb_resource()
    return (
        service,
        store,
        TenantRepository(dynamodb.Table(settings.tenants_table)),
        UploadRepository(dynamodb.Table(settings.uploads_table)),
    )


@per_container
def _schedules() -> TrainingSchedules | None:
    settings = get_ingest_settings()
    return configured_schedules(
        settings.schedule_group,
        settings.scheduler_role_arn,
        settings.state_machine_arn,
        settings.training_window,
    )


def ingest_dropped_file(key: str, now: datetime) -> dict[str, Any]:
    """Ingest one dropped file and write its report next to it; returns the report."""
    match = _DROP_KEY.match(key)
    service, store, tenants, uploads = _service()
    if match is None:
        return _refuse(
            store, key, None, "_file", "files go to incoming/{tenant_id}/{items|interactions}/<name>.csv"
        )
    tenant_id, name = match["tenant"], match["name"]
    kind: Kind = "items" if match["kind"] == "items" else "interactions"
    named = _UPLOAD_NAME.match(name)
    upload_id = named.group(1) if named else None
    try:
        tenants.get(tenant_id)
    except NotFoundError:
        return _refuse(store, key, upload_id, "_tenant", f"unknown tenant '{tenant_id}'")
    # The key's prefix alone proves nothing (an emulator, or a leaked URL edited to another prefix):
    # only a file that matches an upload URL issued to this tenant for this kind is ingested.
    try:
        upload = uploads.get(tenant_id, upload_id) if upload_id is not None else None
    except NotFoundError:
        upload = None
    if upload is None or upload.get("kind") != kind:
        return _refuse(
            store,
            key,
            None,
            "_upload",
            f"no {kind} upload URL was issued for this file to this tenant; "
            "ask POST /api/v1/uploads for one and PUT the file there",
        )
    if upload.get("status") != PENDING:
        return upload  # a redelivered notification: the file was ingested already
    assert upload_id is not None  # an upload record was found by it
    try:
        data = store.get_bytes(key, max_bytes=MAX_CSV_BYTES)
    except PayloadTooLargeError as exc:
        result = service.record_rejected_file(
            tenant_id, upload_id=upload_id, kind=kind, source="drop-folder", message=exc.message, now=now
        )
        store.put_json(f"{key}.report.json", result.as_dict())
        return result.as_dict()
    try:
        if kind == "items":
            result = service.ingest_items_csv(
                tenant_id, data, upload_id=upload_id, now=now, source="drop-folder"
            )
        else:
            result = service.ingest_interactions_csv(
                tenant_id, data, upload_id=upload_id, now=now, source="drop-folder"
            )
    except FileRejectedError as exc:  # nothing stored; the report says why
        result = service.record_rejected_file(
            tenant_id, upload_id=upload_id, kind=kind, source="drop-folder", message=exc.message, now=now
        )
    report = result.as_dict()
    if kind == "interactions" and result.accepted:
        on_interactions_stored(tenants, _schedules(), tenant_id)
    store.put_json(f"{key}.report.json", report)
    metrics.add_metric(name="RowsIngested", unit=MetricUnit.Count, value=result.accepted)
    return report


def _refuse(store: DataStore, key: str, upload_id: str | None, field: str, message: str) -> dict[str, Any]:
    """Report a file that belongs to no tenant of ours; nothing is stored and no tenant record is touched."""
    report = {
        "upload_id": upload_id,
        "status": "failed",
        "accepted": 0,
        "rejected": 0,
        "validation_errors": [{"row": 0, "field": field, "message": message}],
    }
    store.put_json(f"{key}.report.json", report)
    return report


def _s3_keys(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(message id, S3 record) pairs from an SQS batch of S3 notifications, or a direct S3 event."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for record in event.get("Records", []):
        if record.get("eventSource") == "aws:sqs":
            body = json.loads(record["body"])
            pairs.extend((record["messageId"], inner) for inner in body.get("Records", []))
        elif record.get("eventSource") == "aws:s3":
            pairs.append(("", record))
    return pairs


@logger.inject_lambda_context
@metrics.log_metrics
def handle_s3_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    """Entry point: ingest every dropped CSV; failed SQS messages are reported for retry."""
    failures: list[dict[str, str]] = []
    for message_id, record in _s3_keys(event):
        key = unquote_plus(record["s3"]["object"]["key"])
        try:
            report = ingest_dropped_file(key, datetime.now(UTC))
            logger.info("ingested dropped file", extra={"key": key, "status": report["status"]})
        except ServiceUnavailableError:
            logger.exception("dropped file not ingested, will retry", extra={"key": key})
            if message_id:
                failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
