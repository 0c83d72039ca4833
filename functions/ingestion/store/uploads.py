"""Upload records: one per file or event batch, holding the validation report's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from functions.common.dynamo import (
    from_iso,
    get_record,
    to_dynamo,
    to_iso,
    unavailable_on_failure,
)
from functions.common.errors import ServiceUnavailableError

_BATCH_GET = 100
#: Attributes of an interactions upload's record: its oldest and newest stored interaction (ISO, ms).
SPAN_FIRST: Final = "first_timestamp"
SPAN_LAST: Final = "last_timestamp"
#: The status of an upload whose URL was handed out and whose file has not been ingested yet.
PENDING: Final = "pending"


@dataclass(frozen=True)
class UploadRecord:
    """One upload's record: its kind, where it stands (``pending`` until its file is ingested), and the
    whole record as stored (the report summary that ``GET /api/v1/uploads/{id}`` shows)."""

    kind: str
    status: str
    report: dict[str, Any]


@dataclass(frozen=True)
class InteractionSpan:
    """The oldest and newest interaction of some stored rows (both inclusive)."""

    first: datetime
    last: datetime


if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class UploadRepository:
    """Reads and writes a tenant's upload records."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, tenant_id: str, upload_id: str, record: dict[str, Any]) -> None:
        """Store (or replace) the record of one upload."""
        with unavailable_on_failure("the upload store"):
            self._table.put_item(Item={**to_dynamo(record), "tenant_id": tenant_id, "upload_id": upload_id})

    def put_pending(self, tenant_id: str, upload_id: str, kind: str, now: datetime) -> None:
        """Record an upload URL handed out: the drop folder ingests only files that have such a record."""
        self.put(
            tenant_id,
            upload_id,
            {
                "upload_id": upload_id,
                "kind": kind,
                "source": "drop-folder",
                "status": PENDING,
                "accepted": 0,
                "rejected": 0,
                "duplicates": 0,
                "validation_errors": [],
                "warnings": [],
                "received_at": to_iso(now),
            },
        )

    def get(self, tenant_id: str, upload_id: str) -> UploadRecord:
        """The record of one upload of this tenant; ``NotFoundError`` if there is none."""
        item = get_record(
            self._table,
            {"tenant_id": tenant_id, "upload_id": upload_id},
            what="the upload store",
            missing=f"upload '{upload_id}' not found",
        )
        return UploadRecord(kind=str(item.get("kind", "")), status=str(item.get("status", "")), report=item)

    def committed(self, tenant_id: str, upload_ids: Iterable[str]) -> set[str]:
        """Which of ``upload_ids`` have their final record, i.e. finished (BatchGetItem, 100 keys a call)."""
        return set(self._batch_get(tenant_id, upload_ids, "upload_id"))

    def interaction_spans(
        self, tenant_id: str, upload_ids: Iterable[str]
    ) -> dict[str, InteractionSpan | None]:
        """The committed ones of ``upload_ids``, each with the time span of its stored interactions
        (None for records written before ingestion recorded spans)."""
        records = self._batch_get(tenant_id, upload_ids, f"upload_id, {SPAN_FIRST}, {SPAN_LAST}")
        spans: dict[str, InteractionSpan | None] = {}
        for upload_id, item in records.items():
            first, last = item.get(SPAN_FIRST), item.get(SPAN_LAST)
            spans[upload_id] = (
                InteractionSpan(from_iso(str(first)), from_iso(str(last))) if first and last else None
            )
        return spans

    def _batch_get(
        self, tenant_id: str, upload_ids: Iterable[str], projection: str
    ) -> dict[str, dict[str, Any]]:
        """The final (not pending) records of ``upload_ids``, by id (BatchGetItem, 100 keys a call)."""
        wanted = sorted(set(upload_ids))
        found: dict[str, dict[str, Any]] = {}
        client = self._table.meta.client
        for start in range(0, len(wanted), _BATCH_GET):
            keys: Any = [{"tenant_id": tenant_id, "upload_id": u} for u in wanted[start : start + _BATCH_GET]]
            request: Any = {
                self._table.name: {
                    "Keys": keys,
                    "ProjectionExpression": f"{projection}, #status",
                    "ExpressionAttributeNames": {"#status": "status"},
                }
            }
            for _attempt in range(5):
                with unavailable_on_failure("the upload store"):
                    response = client.batch_get_item(RequestItems=request)
                found.update(
                    (str(item["upload_id"]), dict(item))
                    for item in response["Responses"].get(self._table.name, [])
                    if str(item.get("status")) != PENDING
                )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise ServiceUnavailableError("the upload store is throttling, please retry")
        return found
