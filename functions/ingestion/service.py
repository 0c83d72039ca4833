"""Ingestion logic: validate, store accepted rows as Parquet, keep the catalogue, report row by row.

Shared by the API upload, the JSON events endpoint and the S3 drop folder, so every path applies
exactly the same rules. Writes are ordered so that a failure leaves nothing half-visible: claims
and Parquet written by a failed upload are undone before the error reaches the caller.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract import catalog_view, layout
from functions.common import resources
from functions.common.dynamo import to_iso
from functions.common.errors import ConflictError, NotFoundError, ServiceUnavailableError
from functions.ingestion.feed import feed_events, feed_packs, feed_rows, interaction_span
from functions.ingestion.popularity import count_items, merge_counts, popular_document
from functions.ingestion.schema import ITEMS_SCHEMA
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

Kind = Literal["items", "interactions"]
#: Called with (tenant_id, the fresh interaction rows just stored, now); ``functions.analytics.attribution``.
AttributionHook = Callable[[str, pa.Table, datetime], None]
Source = Literal["api-csv", "api-json", "drop-folder"]
_CATALOG_RETRIES = 5
#: Item counts are one object per tenant that every bulk upload rewrites (conditional on its ETag).
_COUNT_RETRIES = 12
_COUNT_BACKOFF_S = 0.05
_COUNT_BACKOFF_CAP_S = 2.0
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
    ) -> None:
        self._store = store
        self._uploads = uploads
        self._event_ids = event_ids
        self._recent_events = recent_events
        self._attribution = attribution
        self._known_items: dict[str, tuple[str, frozenset[str]]] = {}  # tenant → (catalogue ETag, ids)

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
        known = self._known_item_ids(tenant_id)
        result = validate_interactions_csv(data, upload_id=upload_id, now=now, known_item_ids=known)
        return self._store_interactions(tenant_id, result, upload_id, now, source)

    def ingest_interaction_records(
        self, tenant_id: str, records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        """Validate real-time JSON events, store them, and feed them to serving's recent-events table."""
        known = self._known_item_ids(tenant_id)
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

    def _known_item_ids(self, tenant_id: str) -> frozenset[str]:
        """The catalogue's item ids, re-read only when the catalogue changed (a HEAD per upload)."""
        etag = self._store.etag(resources.catalog_key(tenant_id))
        if etag is None:
            return frozenset()
        remembered = self._known_items.get(tenant_id)
        if remembered is not None and remembered[0] == etag:
            return remembered[1]
        current = self._store.read_catalog(tenant_id)
        known = (
            frozenset(current.table.column("item_id").to_pylist())
            if current.table is not None
            else frozenset()
        )
        if current.etag is not None:
            self._known_items[tenant_id] = (current.etag, known)
        return known

    def _store_items(
        self, tenant_id: str, result: ValidationResult, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        key = None
        if result.table.num_rows:
            key = resources.raw_key(tenant_id, "items", now.date().isoformat(), upload_id)
            self._store.put_parquet(key, result.table)
            self._compensate_on_failure(
                lambda: self._upsert_catalog(tenant_id, result.table), key, tenant_id, [], upload_id
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
        if table.num_rows:
            key = resources.raw_key(tenant_id, "interactions", now.date().isoformat(), upload_id)
            try:
                self._store.put_parquet(key, table)
            except ServiceUnavailableError:
                self._event_ids.release(tenant_id, fresh_ids, upload_id)
                raise
            if source != "api-json":
                # Bulk uploads refresh popularity; real-time events do not (recomputing the popular list
                # per event would cost a catalogue read each).
                self._compensate_on_failure(
                    lambda: self._count_interactions(tenant_id, table), key, tenant_id, fresh_ids, upload_id
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
            lambda: self._record(tenant_id, report), key, tenant_id, fresh_ids, upload_id
        )
        return report

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
        self._change_catalog(tenant_id, lambda current: _without_item(current, item_id))

    def _upsert_catalog(self, tenant_id: str, new_rows: pa.Table) -> None:
        """Merge accepted items into the catalogue (latest upload wins), with optimistic concurrency."""
        self._change_catalog(tenant_id, lambda current: _upsert_by_item_id(current, new_rows))

    def _change_catalog(self, tenant_id: str, change: Callable[[pa.Table | None], pa.Table]) -> None:
        """Apply ``change`` to the current catalogue and write it back only if nobody wrote meanwhile."""
        for _attempt in range(_CATALOG_RETRIES):
            current = self._store.read_catalog(tenant_id)
            merged = change(current.table)
            try:
                self._store.write_versioned(
                    resources.catalog_key(tenant_id), merged, expected_etag=current.etag
                )
            except ConflictError:
                continue
            self._publish_popular(tenant_id, catalog=merged)
            return
        raise ServiceUnavailableError("the catalogue is being updated by another upload, please retry")

    def _count_interactions(self, tenant_id: str, table: pa.Table) -> None:
        """Add a batch's weighted counts to the tenant's item counts, then republish popular items."""
        batch = count_items(table)
        key = resources.item_counts_key(tenant_id)
        for attempt in range(_COUNT_RETRIES):
            current = self._store.read_versioned(key)
            try:
                self._store.write_versioned(
                    key, merge_counts(current.table, batch), expected_etag=current.etag
                )
            except ConflictError:
                # Files dropped together all add to this one object: a random, growing pause spreads
                # their retries instead of letting them collide again in lock step.
                time.sleep(random.uniform(0, min(_COUNT_BACKOFF_CAP_S, _COUNT_BACKOFF_S * 2**attempt)))
                continue
            self._publish_popular(tenant_id)
            return
        raise ServiceUnavailableError("item counts are being updated by another upload, please retry")

    def _publish_popular(self, tenant_id: str, catalog: pa.Table | None = None) -> None:
        """Rewrite what serving reads of the catalogue: its serving view and ``popular.json``.

        ``popular.json`` waits until both counts and a catalogue exist; unavailable items are not in it.
        """
        counts = self._store.read_versioned(resources.item_counts_key(tenant_id)).table
        catalog = catalog if catalog is not None else self._store.read_catalog(tenant_id).table
        if catalog is None:
            return
        self._store.put_bytes(
            layout.catalog_view_key(tenant_id),
            catalog_view.encode(serving_columns(catalog, counts)),
            "application/gzip",
        )
        if counts is None:
            return
        servable = catalog.filter(pc.fill_null(catalog["available"], True))
        self._store.put_json(layout.popular_key(tenant_id), popular_document(counts, servable))

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

    def _record(self, tenant_id: str, report: IngestReport) -> None:
        self._store.put_json(resources.report_key(tenant_id, report.upload_id), report.as_dict())
        summary = report.as_dict(issue_limit=_RECORDED_ISSUES)
        summary["report_key"] = resources.report_key(tenant_id, report.upload_id)
        self._uploads.put(tenant_id, report.upload_id, summary)


def _upsert_by_item_id(current: pa.Table | None, new_rows: pa.Table) -> pa.Table:
    """One row per item_id; a row of ``new_rows`` replaces the current one (and later rows earlier ones)."""
    combined = new_rows if current is None else pa.concat_tables([current.cast(ITEMS_SCHEMA), new_rows])
    combined = combined.append_column("_order", pa.array(np.arange(combined.num_rows, dtype=np.int64)))
    latest = combined.group_by("item_id").aggregate([("_order", "max")])
    keep = pc.sort_indices(latest.column("_order_max"))
    return combined.take(pc.take(latest.column("_order_max"), keep)).drop_columns(["_order"])


def _without_item(current: pa.Table | None, item_id: str) -> pa.Table:
    """The catalogue without ``item_id``; ``NotFoundError`` if it has no such item."""
    if current is None:
        raise NotFoundError(f"item '{item_id}' not found")
    keep = pc.not_equal(current["item_id"], item_id)
    if pc.all(keep).as_py() is not False:
        raise NotFoundError(f"item '{item_id}' not found")
    return current.filter(keep)


def serving_columns(catalog: pa.Table, counts: pa.Table | None) -> catalog_view.CatalogColumns:
    """The catalogue with each item's weighted interaction count, as serving reads it."""
    popularity = np.zeros(catalog.num_rows)
    if counts is not None and counts.num_rows:
        position = pc.index_in(catalog["item_id"], value_set=counts["item_id"]).to_numpy(zero_copy_only=False)
        found = ~np.isnan(position.astype(np.float64))
        weights = counts["weight"].to_numpy()
        popularity[found] = weights[position[found].astype(np.int64)]
    return catalog_view.CatalogColumns(
        item_id=catalog["item_id"].to_pylist(),
        title=catalog["title"].to_pylist(),
        category=catalog["category"].to_pylist(),
        brand=catalog["brand"].to_pylist(),
        price=catalog["price"].to_pylist(),
        available=pc.fill_null(catalog["available"], True).to_pylist(),
        popularity=popularity.tolist(),
    )


def _issue(issue: RowIssue) -> dict[str, Any]:
    return {"row": issue.row, "field": issue.field, "message": issue.message}
