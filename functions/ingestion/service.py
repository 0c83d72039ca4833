"""Ingestion logic: validate, store accepted rows as Parquet, report row by row.

Shared by the API upload, the JSON events endpoint and the S3 drop folder, so every path applies
exactly the same rules. Files are stored here, one Parquet object each; real-time JSON events are
validated, de-duplicated, fed to serving and recorded here, then handed off to be stored in batches
(``compaction.py``: one object per batch of requests, never one per request). Writes are ordered so
that a failure leaves nothing half-visible: claims and Parquet written by a failed upload are undone
before the error reaches the caller. The catalogue and what serving reads of it (item counts, serving
view, popular items) are kept by ``catalog.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from functions.common import resources
from functions.common.dynamo import to_iso
from functions.common.errors import ServiceUnavailableError
from functions.ingestion.catalog import CatalogKeeper
from functions.ingestion.compaction import EventCompactor, EventHandoff
from functions.ingestion.event_messages import EventMessage
from functions.ingestion.feed import feed_events, feed_packs, feed_rows, interaction_span
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import EventIdRepository, RecentEventsRepository
from functions.ingestion.store.recent_activity import FEED_DEPTH
from functions.ingestion.store.uploads import UploadRepository
from functions.ingestion.validation import (
    RowIssue,
    ValidationResult,
    validate_interactions_csv,
    validate_interactions_records,
    validate_items_csv,
    validate_items_records,
)

if TYPE_CHECKING:  # only the api function sends: the drop folder's code path never does
    from functions.ingestion.store.event_queue import EventQueue

Kind = Literal["items", "interactions"]
#: Called with (tenant_id, the fresh interaction rows just stored, now); ``functions.analytics.attribution``.
AttributionHook = Callable[[str, pa.Table, datetime], None]
Source = Literal["api-csv", "api-json", "drop-folder"]
_RECORDED_ISSUES = 200  # per upload record in DynamoDB; the S3 report keeps every listed issue


@dataclass(frozen=True)
class IngestReport:
    """What happened to one upload. ``accepted + rejected + duplicates`` is the number of rows received.

    ``duplicates`` are rows stored by an earlier upload (same ``event_id``): valid, but not stored again.
    """

    upload_id: str
    kind: Kind
    source: Source
    accepted: int
    rejected: int
    duplicates: int
    validation_errors: list[RowIssue]
    warnings: list[RowIssue]
    received_at: datetime
    object_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``success`` (nothing rejected), ``partial``, or ``failed`` (nothing accepted, something wrong)."""
        if self.accepted == 0 and (self.rejected or self.validation_errors):
            return "failed"
        return "success" if self.rejected == 0 else "partial"

    def as_dict(self, issue_limit: int | None = None) -> dict[str, Any]:
        """The report as the API returns it (issues cut to ``issue_limit`` when given)."""
        return {
            "upload_id": self.upload_id,
            "kind": self.kind,
            "source": self.source,
            "status": self.status,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "validation_errors": [_issue(i) for i in self.validation_errors[:issue_limit]],
            "warnings": [_issue(i) for i in self.warnings[:issue_limit]],
            "received_at": to_iso(self.received_at),
            **self.extra,
        }


class IngestionService:
    """Validates and stores a tenant's catalogue and interactions."""

    def __init__(
        self,
        store: DataStore,
        uploads: UploadRepository,
        event_ids: EventIdRepository,
        recent_events: RecentEventsRepository,
        attribution: AttributionHook | None = None,
        event_queue: EventQueue | None = None,
    ) -> None:
        self._store = store
        self._uploads = uploads
        self._event_ids = event_ids
        self._recent_events = recent_events
        self._attribution = attribution
        self._catalog = CatalogKeeper(store)
        # Without a queue (scripts, the ingest function) real-time events are compacted at once, alone.
        self._events = EventHandoff(event_queue, EventCompactor(store, uploads, recent_events))

    def ingest_items_csv(
        self, tenant_id: str, data: bytes, *, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        """Validate an items CSV and upsert its accepted rows into the catalogue."""
        return self._store_items(tenant_id, validate_items_csv(data, now=now), upload_id, now, source)

    def ingest_items_records(
        self, tenant_id: str, records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        """Validate JSON item objects and upsert the accepted ones."""
        return self._store_items(
            tenant_id, validate_items_records(records, now=now), upload_id, now, "api-json"
        )

    def ingest_interactions_csv(
        self, tenant_id: str, data: bytes, *, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        """Validate an interactions CSV and store its accepted rows."""
        known = self._catalog.known_item_ids(tenant_id)
        result = validate_interactions_csv(data, upload_id=upload_id, now=now, known_item_ids=known)
        return self._store_interactions(tenant_id, result, upload_id, now, source)

    def ingest_interaction_records(
        self, tenant_id: str, records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        """Validate real-time JSON events, store them, and feed them to serving's recent-events table."""
        known = self._catalog.known_item_ids(tenant_id)
        result = validate_interactions_records(records, upload_id=upload_id, now=now, known_item_ids=known)
        return self._store_interactions(tenant_id, result, upload_id, now, "api-json")

    @property
    def recent_events(self) -> RecentEventsRepository:
        """The real-time feed this service writes (erasure deletes from it too)."""
        return self._recent_events

    def record_rejected_file(
        self, tenant_id: str, *, upload_id: str, kind: Kind, source: Source, message: str, now: datetime
    ) -> IngestReport:
        """Record a file that could not be read at all (nothing stored) so its report can be fetched."""
        report = IngestReport(
            upload_id=upload_id,
            kind=kind,
            source=source,
            accepted=0,
            rejected=0,
            duplicates=0,
            validation_errors=[RowIssue(0, "_file", message)],
            warnings=[],
            received_at=now,
        )
        self._record(tenant_id, report)
        return report

    def _store_items(
        self, tenant_id: str, result: ValidationResult, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        key = None
        if result.table.num_rows:
            key = resources.raw_key(tenant_id, "items", now.date().isoformat(), upload_id)
            self._store.put_parquet(key, result.table)
            self._compensate_on_failure(
                lambda: self._catalog.upsert(tenant_id, result.table), key, tenant_id, [], upload_id
            )
        report = IngestReport(
            upload_id=upload_id,
            kind="items",
            source=source,
            accepted=result.table.num_rows,
            rejected=result.rejected,
            duplicates=0,
            validation_errors=list(result.errors),
            warnings=list(result.warnings),
            received_at=now,
            object_key=key,
        )
        self._compensate_on_failure(lambda: self._record(tenant_id, report), key, tenant_id, [], upload_id)
        return report

    def _store_interactions(
        self, tenant_id: str, result: ValidationResult, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        table = result.table
        event_ids = [e for e in table.column("event_id").to_pylist() if e] if table.num_rows else []
        already_seen = self._event_ids.claim(tenant_id, event_ids, upload_id, now) if event_ids else set()
        fresh_ids = [e for e in event_ids if e not in already_seen]
        if already_seen:
            seen_mask = pc.is_in(table.column("event_id"), value_set=pa.array(sorted(already_seen)))
            table = table.filter(pc.invert(pc.fill_null(seen_mask, False)))
        key = None
        # Real-time events are handed off (one message per request) and compacted in batches; files
        # are stored here, one object each, and add to the item counts.
        handed_off = source == "api-json"
        if table.num_rows:
            if not handed_off:
                key = resources.raw_key(tenant_id, "interactions", now.date().isoformat(), upload_id)
                try:
                    self._store.put_parquet(key, table)
                except ServiceUnavailableError:
                    self._event_ids.release(tenant_id, fresh_ids, upload_id)
                    raise
                self._compensate_on_failure(
                    lambda: self._catalog.add_counts(tenant_id, table), key, tenant_id, fresh_ids, upload_id
                )
            # Every source feeds serving's per-user history: exclude purchased, reasons, fold-in.
            self._compensate_on_failure(
                lambda: self._feed_recent(tenant_id, table, upload_id, now, source),
                key,
                tenant_id,
                fresh_ids,
                upload_id,
            )
            if self._attribution is not None:  # last before the record: it undoes its own partial writes
                attribute = self._attribution
                self._compensate_on_failure(
                    lambda: attribute(tenant_id, table, now), key, tenant_id, fresh_ids, upload_id
                )
        warnings = list(result.warnings)
        if already_seen:
            warnings.append(
                RowIssue(
                    0,
                    "event_id",
                    f"{len(already_seen)} event(s) were already received earlier and were not stored again",
                )
            )
        report = IngestReport(
            upload_id=upload_id,
            kind="interactions",
            source=source,
            # A replay is reported as a duplicate, never as a row accepted again.
            accepted=table.num_rows,
            rejected=result.rejected,
            duplicates=result.table.num_rows - table.num_rows,
            validation_errors=list(result.errors),
            warnings=warnings,
            received_at=now,
            object_key=key,
            extra=interaction_span(table) if key is not None else {},
        )
        self._compensate_on_failure(
            lambda: self._record(tenant_id, report, file_report=not handed_off),
            key,
            tenant_id,
            fresh_ids,
            upload_id,
        )
        if handed_off and table.num_rows:
            self._hand_off(tenant_id, EventMessage.of_rows(tenant_id, upload_id, now, table), fresh_ids, now)
        return report

    def _hand_off(self, tenant_id: str, message: EventMessage, claimed: list[str], now: datetime) -> None:
        """Queue (or store) a request's events after its record; if neither works, undo the request.

        The record goes first: the compactor stores a request's events only while its record exists,
        so a request undone here (its record deleted, its event ids released) is never stored, even if
        its message was queued after all, and the client's retry is accepted afresh.
        """
        try:
            self._events.deliver(message, now)
        except ServiceUnavailableError:
            try:
                self._uploads.delete(tenant_id, message.upload_id)
            finally:
                if claimed:
                    self._event_ids.release(tenant_id, claimed, message.upload_id)
            raise

    def _compensate_on_failure(
        self, step: Callable[[], None], key: str | None, tenant_id: str, claimed: list[str], upload_id: str
    ) -> None:
        """Run ``step``; if a dependency fails, undo this upload's writes so a retry starts clean."""
        try:
            step()
        except ServiceUnavailableError:
            if key is not None:
                self._store.delete(key)
            if claimed:
                self._event_ids.release(tenant_id, claimed, upload_id)
            raise

    def remove_item(self, tenant_id: str, item_id: str) -> None:
        """Take an item out of the catalogue (serving stops showing it); ``NotFoundError`` if unknown."""
        self._catalog.remove_item(tenant_id, item_id)

    def _feed_recent(
        self, tenant_id: str, table: pa.Table, upload_id: str, now: datetime, source: Source
    ) -> None:
        """Each user's purchases and newest rows into the recent-events feed (serving reads no deeper).

        Real-time events are one entry each; a bulk upload writes one entry per user, so a 100k-row
        file costs a write per shopper, not per row.
        """
        rows = feed_rows(table, FEED_DEPTH)
        if source == "api-json":
            self._recent_events.put_many(tenant_id, feed_events(rows, upload_id), now)
        else:
            self._recent_events.put_packs(tenant_id, feed_packs(rows), upload_id, now)

    def _record(self, tenant_id: str, report: IngestReport, *, file_report: bool = True) -> None:
        """The upload record (``GET /api/v1/uploads/{id}``) and, for files, the full report in S3.

        A JSON request's response is its full report already: it gets the record alone.
        """
        summary = report.as_dict(issue_limit=_RECORDED_ISSUES)
        if file_report:
            self._store.put_json(resources.report_key(tenant_id, report.upload_id), report.as_dict())
            summary["report_key"] = resources.report_key(tenant_id, report.upload_id)
        self._uploads.put(tenant_id, report.upload_id, summary)


def _issue(issue: RowIssue) -> dict[str, Any]:
    return {"row": issue.row, "field": issue.field, "message": issue.message}
