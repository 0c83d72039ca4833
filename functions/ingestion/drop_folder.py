"""The ``ingest`` function: CSV files dropped under ``incoming/{tenant}/{items|interactions}/``.

Triggered by S3 notifications delivered through SQS (retries and a dead-letter queue for free).
Hands each file to the same intake as the API upload (``functions.ingestion.intake``), which validates
and stores it and puts the JSON report next to the file (``<file>.report.json``) and in the tenant's
upload records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.container import per_container
from functions.common.errors import ServiceUnavailableError
from functions.common.observability import MetricUnit, logger, metrics
from functions.common.settings import get_ingest_settings
from functions.ingestion.intake import Intake
from functions.ingestion.service import Kind
from functions.ingestion.tables import MAX_CSV_BYTES, MAX_INTERACTION_CSV_BYTES
from functions.ingestion.wiring import build_intake
from functions.training.schedule import TrainingSchedules, configured_schedules


@per_container
def _intake() -> Intake:
    return build_intake(get_ingest_settings(), _schedules)


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
    caps: dict[Kind, int] = {"items": MAX_CSV_BYTES, "interactions": MAX_INTERACTION_CSV_BYTES}
    dropped = _intake().ingest_dropped_file(key, now, max_bytes=caps)
    if dropped.accepted is not None:
        metrics.add_metric(name="RowsIngested", unit=MetricUnit.Count, value=dropped.accepted)
    return dropped.report


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
