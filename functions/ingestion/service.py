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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from functions.common import resources
from functions.common.dynamo import to_iso
from functions.common.errors import FileRejectedError, ServiceUnavailableError
from functions.ingestion.catalog import CatalogKeeper
from functions.ingestion.compaction import EventCompactor, EventHandoff
from functions.ingestion.event_messages import EventMessage
from functions.ingestion.feed import FeedRows, feed_events, feed_packs, feed_slices, span_attributes
from functions.ingestion.popularity import count_items, merge_counts
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.events import EventIdRepository, RecentEventsRepository
from functions.ingestion.store.recent_activity import FEED_DEPTH
from functions.ingestion.store.uploads import UploadRepository
from functions.ingestion.tables import INTERACTIONS_SCHEMA
from functions.ingestion.validation import (
    ByteSource,
    IssueTally,
    RowIssue,
    ValidationResult,
    merge_results,
    stream_interactions_csv,
    stream_items_csv,
    validate_interactions_records,
    validate_items_records,
)

if TYPE_CHECKING:  # only the api function sends: the drop folder's code path never does
    from functions.ingestion.store.event_queue import EventQueue

Kind = Literal["items", "interactions"]


class AttributionHook(Protocol):
    """``functions.analytics.attribution``: called once per upload with the fresh rows that name a
    ``source`` or a ``recommendation_id`` (no other row can be attributed) and how many fresh rows
    were stored in all."""

    def __call__(self, tenant_id: str, fresh_rows: pa.Table, now: datetime, *, stored: int) -> None: ...


Source = Literal["api-csv", "api-json", "drop-folder"]
#: Users whose feed entries are encoded and written together.
_PACK_USERS = 20_000
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
        self, tenant_id: str, data: ByteSource, *, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        """Validate an items CSV (read in chunks) and upsert its accepted rows into the catalogue."""
        return self._store_items(
            tenant_id, merge_results(stream_items_csv(data, now=now)), upload_id, now, source
        )

    def ingest_items_records(
        self, tenant_id: str, records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        """Validate JSON item objects and upsert the accepted ones."""
        return self._store_items(
            tenant_id, validate_items_records(records, now=now), upload_id, now, "api-json"
        )

    def ingest_interactions_csv(
        self, tenant_id: str, data: ByteSource, *, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        """Validate an interactions CSV and store its accepted rows, chunk by chunk: memory is set by
        a chunk (and by what is kept per user and item), not by the file."""
        known = self._catalog.known_item_ids(tenant_id)
        chunks = stream_interactions_csv(data, upload_id=upload_id, now=now, known_item_ids=known)
        return self._store_interactions(tenant_id, chunks, upload_id, now, source)

    def ingest_interaction_records(
        self, tenant_id: str, records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        """Validate real-time JSON events, store them, and feed them to serving's recent-events table."""
        known = self._catalog.known_item_ids(tenant_id)
        result = validate_interactions_records(records, upload_id=upload_id, now=now, known_item_ids=known)
        return self._store_interactions(tenant_id, [result], upload_id, now, "api-json")

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
            self._compensate_on_failure(lambda: self._catalog.upsert(tenant_id, result.table), key)
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
        self._compensate_on_failure(lambda: self._record(tenant_id, report), key)
        return report

    def _store_interactions(
        self,
        tenant_id: str,
        chunks: Iterable[ValidationResult],
        upload_id: str,
        now: datetime,
        source: Source,
    ) -> IngestReport:
        """Claim, store and account each chunk in turn, then run what follows stored rows once.

        Per chunk only the event-id claims and the Parquet row groups are written; everything else
        (item counts, the feed, attribution, the record) waits for the last chunk, so a failure at any
        point is undone by aborting the Parquet object and releasing the claims (and the counts delta).

        Real-time JSON events write no object: their rows are held (a request has at most 10,000)
        and handed off after the record, one message per request, to be stored in batches
        (``compaction.py``); they add to no item counts.
        """
        key = resources.raw_key(tenant_id, "interactions", now.date().isoformat(), upload_id)
        handed_off = source == "api-json"
        held = _HeldRows()
        sink: _RowSink = held if handed_off else self._store.open_parquet(key, INTERACTIONS_SCHEMA)
        upload = _Upload(sink, bulk=not handed_off)
        try:
            for result in chunks:
                fresh = self._claim_fresh(tenant_id, result.table, upload_id, now, upload)
                upload.parquet.append_rows(fresh)
                upload.add(result, fresh)
            if upload.parquet.rows:
                upload.parquet.finish_upload()
        except (ServiceUnavailableError, FileRejectedError):
            self._undo(upload, tenant_id, upload_id, counted=False)
            raise
        stored = upload.parquet.rows
        try:
            if stored:
                self._after_stored(tenant_id, upload, upload_id, now, source)
            report = upload.report(upload_id, source, now, key if stored and not handed_off else None)
            self._record(tenant_id, report, file_report=not handed_off)
        except ServiceUnavailableError:
            self._undo(upload, tenant_id, upload_id, counted=stored > 0 and upload.counts is not None)
            raise
        if handed_off and stored:
            self._hand_off(
                tenant_id, EventMessage.of_rows(tenant_id, upload_id, now, held.table()), upload, now
            )
        return report

    def _hand_off(self, tenant_id: str, message: EventMessage, upload: _Upload, now: datetime) -> None:
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
                self._undo(upload, tenant_id, message.upload_id, counted=False)
            raise

    def _claim_fresh(
        self, tenant_id: str, table: pa.Table, upload_id: str, now: datetime, upload: _Upload
    ) -> pa.Table:
        """Claim a chunk's event ids; returns its rows without those an earlier upload stored."""
        if not table.num_rows:
            return table
        column = table.column("event_id")
        present = pc.drop_null(column)
        if not len(present):
            return table
        event_ids = present.to_pylist()
        already_seen = self._event_ids.claim(tenant_id, event_ids, upload_id, now)
        upload.claimed.append(present)  # released if the upload fails (ids held elsewhere are kept)
        if not already_seen:
            return table
        upload.already_seen += len(already_seen)
        seen_mask = pc.is_in(column, value_set=pa.array(sorted(already_seen), pa.string()))
        return table.filter(pc.invert(pc.fill_null(seen_mask, False)))

    def _after_stored(
        self, tenant_id: str, upload: _Upload, upload_id: str, now: datetime, source: Source
    ) -> None:
        """Once the rows are stored: item counts (bulk uploads), the feed, attribution."""
        if upload.counts is not None:
            # Bulk uploads refresh popularity; real-time events do not (recomputing the popular list
            # per event would cost a catalogue read each).
            self._catalog.add_counts(tenant_id, upload_id, upload.counts, now)
        # Every source feeds serving's per-user history: exclude purchased, reasons, fold-in.
        rows = upload.feed.rows()
        if rows is not None:
            if source == "api-json":
                self._recent_events.put_many(tenant_id, feed_events(rows, upload_id), now)
            else:
                # A bulk upload writes one entry per user, so a 100k-row file costs a write per
                # shopper, not per row; encoded a slice of users at a time, so the entries of a file
                # of a million shoppers are never all in memory at once.
                for users in feed_slices(rows, _PACK_USERS):
                    self._recent_events.put_packs(tenant_id, feed_packs(users), upload_id, now)
        if self._attribution is not None:  # last before the record: it undoes its own partial writes
            self._attribution(tenant_id, upload.attributable(), now, stored=upload.parquet.rows)

    def _undo(self, upload: _Upload, tenant_id: str, upload_id: str, *, counted: bool) -> None:
        """Leave nothing of a failed upload behind, so that its retry starts clean."""
        upload.parquet.abort_upload()
        if counted:
            self._catalog.remove_counts(tenant_id, upload_id)
        for claimed in upload.claimed:
            self._event_ids.release(tenant_id, claimed.to_pylist(), upload_id)

    def _compensate_on_failure(self, step: Callable[[], None], key: str | None) -> None:
        """Run one step of an items upload; if a dependency fails, remove its Parquet so a retry starts
        clean (the catalogue is written last but one, conditionally, and only the record follows)."""
        try:
            step()
        except ServiceUnavailableError:
            if key is not None:
                self._store.delete(key)
            raise

    def remove_item(self, tenant_id: str, item_id: str) -> None:
        """Take an item out of the catalogue (serving stops showing it); ``NotFoundError`` if unknown."""
        self._catalog.remove_item(tenant_id, item_id)

    def _record(self, tenant_id: str, report: IngestReport, *, file_report: bool = True) -> None:
        """The upload record (``GET /api/v1/uploads/{id}``) and, for files, the full report in S3.

        A JSON request's response is its full report already: it gets the record alone.
        """
        summary = report.as_dict(issue_limit=_RECORDED_ISSUES)
        if file_report:
            self._store.put_json(resources.report_key(tenant_id, report.upload_id), report.as_dict())
            summary["report_key"] = resources.report_key(tenant_id, report.upload_id)
        self._uploads.put(tenant_id, report.upload_id, summary)


class _RowSink(Protocol):
    """Where an interactions upload's accepted rows go: a Parquet object (``ParquetUpload``), or held
    for the hand-off (``_HeldRows``)."""

    rows: int

    def append_rows(self, table: pa.Table) -> None: ...

    def finish_upload(self) -> None: ...

    def abort_upload(self) -> None: ...


class _HeldRows:
    """A JSON request's accepted rows, kept (at most 10,000) until they are handed off."""

    def __init__(self) -> None:
        self.rows = 0
        self._tables: list[pa.Table] = []

    def append_rows(self, table: pa.Table) -> None:
        """Keep rows."""
        if table.num_rows:
            self._tables.append(table)
            self.rows += table.num_rows

    def finish_upload(self) -> None:
        """Nothing to finish: the rows leave with the hand-off, after the record."""

    def abort_upload(self) -> None:
        """Drop the rows (nothing was written)."""
        self._tables.clear()

    def table(self) -> pa.Table:
        """Every row kept, in the stored schema."""
        return pa.concat_tables(self._tables) if self._tables else INTERACTIONS_SCHEMA.empty_table()


class _Upload:
    """What an interactions upload has stored so far, and what it keeps for the steps after the rows.

    Per user at most the feed's depth of rows, per item one count, the rows attribution can use, the
    claimed ids (to release on failure) and the report's counts: none of it grows with rows that a
    shop's export holds many of per user or item.
    """

    def __init__(self, parquet: _RowSink, *, bulk: bool) -> None:
        self.parquet = parquet
        self.bulk = bulk
        self.tally = IssueTally()
        self.received_valid = 0
        self.already_seen = 0
        self.claimed: list[pa.Array] = []
        self.counts: pa.Table | None = None
        self.feed = FeedRows(FEED_DEPTH)
        self._attributable: list[pa.Table] = []
        self._first: Any = None
        self._last: Any = None

    def add(self, result: ValidationResult, fresh: pa.Table) -> None:
        self.tally.add(result)
        self.received_valid += result.table.num_rows
        if not fresh.num_rows:
            return
        if self.bulk:
            self.counts = merge_counts(self.counts, count_items(fresh))
        self.feed.add(fresh)
        claims = pc.or_(pc.is_valid(fresh["source"]), pc.is_valid(fresh["recommendation_id"]))
        if pc.any(claims).as_py():
            self._attributable.append(fresh.filter(claims))
        bounds = pc.min_max(fresh["timestamp"])
        first, last = bounds["min"].as_py(), bounds["max"].as_py()
        self._first = first if self._first is None else min(self._first, first)
        self._last = last if self._last is None else max(self._last, last)

    def attributable(self) -> pa.Table:
        if not self._attributable:
            return INTERACTIONS_SCHEMA.empty_table()
        return pa.concat_tables(self._attributable)

    def report(self, upload_id: str, source: Source, now: datetime, key: str | None) -> IngestReport:
        warnings = list(self.tally.warnings)
        if self.already_seen:
            warnings.append(
                RowIssue(
                    0,
                    "event_id",
                    f"{self.already_seen} event(s) were already received earlier and were not stored again",
                )
            )
        span = span_attributes(self._first, self._last) if key else {}
        return IngestReport(
            upload_id=upload_id,
            kind="interactions",
            source=source,
            # A replay is reported as a duplicate, never as a row accepted again.
            accepted=self.parquet.rows,
            rejected=self.tally.rejected,
            duplicates=self.received_valid - self.parquet.rows,
            validation_errors=list(self.tally.errors),
            warnings=warnings,
            received_at=now,
            object_key=key,
            extra=span,
        )


def _issue(issue: RowIssue) -> dict[str, Any]:
    return {"row": issue.row, "field": issue.field, "message": issue.message}
