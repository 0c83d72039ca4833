"""Upload records: one per file or event batch, holding the validation report's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from functions.common.dynamo import (
    from_iso,
    get_record,
    to_dynamo,
    to_iso,
    unavailable_on_failure,
    write_if,
)
from functions.common.errors import ServiceUnavailableError

_BATCH_GET = 100
#: Attributes of an interactions upload's record: its oldest and newest stored interaction (ISO, ms).
SPAN_FIRST: Final = "first_timestamp"
SPAN_LAST: Final = "last_timestamp"
#: The status of an upload whose URL was handed out and whose file has not been ingested yet.
PENDING: Final = "pending"
#: Attributes of a JSON events request's record: the compacted batch its rows were claimed for, and when
#: (``functions.ingestion.compaction``); the batch's own record, written last, commits them.
COMPACTION_BATCH: Final = "compaction_batch"
COMPACTION_CLAIMED_AT: Final = "compaction_claimed_at"


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


@dataclass(frozen=True)
class CompactionClaim:
    """Which batch a request's events were claimed for (``batch`` None: not yet), and when (as stored)."""

    batch: str | None = None
    claimed_at: str | None = None

    def older_than(self, moment: datetime) -> bool:
        """Whether the claim was made before ``moment`` (an unclaimed request counts as old)."""
        return self.claimed_at is None or from_iso(self.claimed_at) < moment


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

    def delete(self, tenant_id: str, upload_id: str) -> None:
        """Remove one upload's record (undoing a request whose rows could not be stored)."""
        with unavailable_on_failure("the upload store"):
            self._table.delete_item(Key={"tenant_id": tenant_id, "upload_id": upload_id})

    def compaction_claims(self, tenant_id: str, upload_ids: Iterable[str]) -> dict[str, CompactionClaim]:
        """The recorded ones of ``upload_ids`` (JSON events requests), each with its compaction claim."""
        records = self._batch_get(
            tenant_id, upload_ids, f"upload_id, {COMPACTION_BATCH}, {COMPACTION_CLAIMED_AT}"
        )
        return {
            upload_id: CompactionClaim(
                str(item[COMPACTION_BATCH]) if item.get(COMPACTION_BATCH) else None,
                str(item[COMPACTION_CLAIMED_AT]) if item.get(COMPACTION_CLAIMED_AT) else None,
            )
            for upload_id, item in records.items()
        }

    def claim_for_compaction(
        self, tenant_id: str, upload_id: str, batch: str, seen: CompactionClaim, now: datetime
    ) -> bool:
        """Claim a request's events for ``batch`` if its record still holds the claim ``seen`` (and exists).

        False when the record changed since it was read (another consumer claimed it) or is gone.
        """
        names = {"#batch": COMPACTION_BATCH, "#at": COMPACTION_CLAIMED_AT}
        values: dict[str, Any] = {":batch": batch, ":now": now.astimezone(UTC).isoformat()}
        if seen.batch is None:
            condition = "attribute_exists(upload_id) AND attribute_not_exists(#batch)"
        else:
            condition = "#batch = :seen_batch AND #at = :seen_at"
            values |= {":seen_batch": seen.batch, ":seen_at": seen.claimed_at}
        return write_if(
            "the upload store",
            lambda: self._table.update_item(
                Key={"tenant_id": tenant_id, "upload_id": upload_id},
                UpdateExpression="SET #batch = :batch, #at = :now",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            ),
        )

    def release_compaction_claim(self, tenant_id: str, upload_id: str, claim: CompactionClaim) -> None:
        """Remove the claim ``claim`` from a request's record, if it still holds exactly that one."""
        write_if(
            "the upload store",
            lambda: self._table.update_item(
                Key={"tenant_id": tenant_id, "upload_id": upload_id},
                UpdateExpression="REMOVE #batch, #at",
                ConditionExpression="#batch = :batch AND #at = :at",
                ExpressionAttributeNames={"#batch": COMPACTION_BATCH, "#at": COMPACTION_CLAIMED_AT},
                ExpressionAttributeValues={":batch": claim.batch, ":at": claim.claimed_at},
            ),
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
