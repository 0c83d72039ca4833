"""The intake: how an upload becomes stored data, whichever way it arrived.

Both entry points call it: the API's upload routes (``routes.py``: a CSV file or JSON records) and the
drop folder (``drop_folder.py``: a CSV put with a presigned URL). The intake picks the validation for the
upload's kind and format, stores the accepted rows through ``IngestionService`` (which also rewrites the
catalogue view and popular items, feeds serving's recent events and attributes interactions to
recommendations), and then runs what stored interactions set off: the tenant is marked as having data
and its retraining schedule is reconciled (``functions.training.schedule``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from functions.common import resources
from functions.common.errors import FileRejectedError, NotFoundError, PayloadTooLargeError
from functions.identity.store.tenants import TenantRepository
from functions.ingestion.service import IngestionService, IngestReport, Kind, Source
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import PENDING, UploadRepository
from functions.ingestion.validation import ByteSource, bytes_source
from functions.training.schedule import TrainingSchedules, on_interactions_stored

_DROP_KEY = re.compile(
    r"^"
    + re.escape(resources.DROP_FOLDER_PREFIX)
    + r"(?P<tenant>[A-Za-z0-9_-]+)/(?P<kind>items|interactions)/"
    r"(?P<name>[^/]+\.csv)$"
)
_UPLOAD_NAME = re.compile(r"^(upload_[0-9a-f]{12})\.csv$")


@dataclass(frozen=True)
class Payload:
    """An upload's content, a CSV file (read in blocks, possibly twice) or JSON records, and the way it
    came (the report's ``source``)."""

    source: Source
    csv: ByteSource | None = None
    records: list[dict[str, Any]] | None = None

    @classmethod
    def of_csv(cls, data: bytes | ByteSource, source: Literal["api-csv", "drop-folder"]) -> Payload:
        """A CSV file: a body uploaded to the API, or a file of the drop folder read from S3."""
        return cls(source, csv=bytes_source(data) if isinstance(data, bytes) else data)

    @classmethod
    def of_records(cls, records: list[dict[str, Any]]) -> Payload:
        """JSON objects sent to the API (one item or event each)."""
        return cls("api-json", records=records)


@dataclass(frozen=True)
class DroppedFile:
    """What became of one file of the drop folder.

    ``report`` is what was written next to the file; ``accepted`` the rows stored when the file was read
    and validated (possibly 0), None when it was refused unread, too large, or ingested before.
    """

    report: dict[str, Any]
    accepted: int | None = None


class Intake:
    """Stores uploads of every source alike and runs what follows stored data."""

    def __init__(
        self,
        service: IngestionService,
        store: DataStore,
        tenants: TenantRepository,
        uploads: UploadRepository,
        schedules: Callable[[], TrainingSchedules | None],
    ) -> None:
        self._service = service
        self._store = store
        self._tenants = tenants
        self._uploads = uploads
        self._schedules = schedules  # built on first use: an items upload never needs the Scheduler

    def ingest(
        self, tenant_id: str, kind: Kind, payload: Payload, *, upload_id: str, now: datetime
    ) -> IngestReport:
        """Validate and store one upload, then, if interactions were stored, reconcile the tenant's
        retraining schedule. ``FileRejectedError`` when the file cannot be read at all."""
        report = self._store_payload(tenant_id, kind, payload, upload_id, now)
        if kind == "interactions" and report.accepted:
            on_interactions_stored(self._tenants, self._schedules(), tenant_id)
        return report

    def _store_payload(
        self, tenant_id: str, kind: Kind, payload: Payload, upload_id: str, now: datetime
    ) -> IngestReport:
        service = self._service
        if payload.csv is not None:
            ingest_csv = service.ingest_items_csv if kind == "items" else service.ingest_interactions_csv
            return ingest_csv(tenant_id, payload.csv, upload_id=upload_id, now=now, source=payload.source)
        records = payload.records or []
        if kind == "items":
            return service.ingest_items_records(tenant_id, records, upload_id=upload_id, now=now)
        return service.ingest_interaction_records(tenant_id, records, upload_id=upload_id, now=now)

    def ingest_dropped_file(self, key: str, now: datetime, *, max_bytes: Mapping[Kind, int]) -> DroppedFile:
        """Ingest one file of the drop folder and write its report next to it (``<key>.report.json``).

        The key's prefix alone proves nothing (an emulator, or a leaked URL edited to another prefix):
        only a file that matches a pending upload URL issued to the tenant its key names, for this kind,
        is ingested. Anything else gets a failed report and no tenant record is touched.
        """
        match = _DROP_KEY.match(key)
        if match is None:
            return self._refuse(
                key, None, "_file", "files go to incoming/{tenant_id}/{items|interactions}/<name>.csv"
            )
        tenant_id, name = match["tenant"], match["name"]
        kind: Kind = "items" if match["kind"] == "items" else "interactions"
        named = _UPLOAD_NAME.match(name)
        upload_id = named.group(1) if named else None
        try:
            self._tenants.get(tenant_id)
        except NotFoundError:
            return self._refuse(key, upload_id, "_tenant", f"unknown tenant '{tenant_id}'")
        try:
            upload = self._uploads.get(tenant_id, upload_id) if upload_id is not None else None
        except NotFoundError:
            upload = None
        if upload is None or upload.kind != kind:
            return self._refuse(
                key,
                None,
                "_upload",
                f"no {kind} upload URL was issued for this file to this tenant; "
                "ask POST /api/v1/uploads for one and PUT the file there",
            )
        if upload.status != PENDING:
            return DroppedFile(upload.report)  # a redelivered notification: the file was ingested already
        assert upload_id is not None  # an upload record was found by it
        try:
            data = self._store.open_source(key, max_bytes=max_bytes[kind])
        except PayloadTooLargeError as exc:
            rejected = self._service.record_rejected_file(
                tenant_id, upload_id=upload_id, kind=kind, source="drop-folder", message=exc.message, now=now
            )
            self._store.put_json(f"{key}.report.json", rejected.as_dict())
            return DroppedFile(rejected.as_dict())
        try:
            result = self.ingest(
                tenant_id, kind, Payload.of_csv(data, "drop-folder"), upload_id=upload_id, now=now
            )
        except FileRejectedError as exc:  # nothing stored; the report says why
            result = self._service.record_rejected_file(
                tenant_id, upload_id=upload_id, kind=kind, source="drop-folder", message=exc.message, now=now
            )
        report = result.as_dict()
        self._store.put_json(f"{key}.report.json", report)
        return DroppedFile(report, accepted=result.accepted)

    def _refuse(self, key: str, upload_id: str | None, field: str, message: str) -> DroppedFile:
        """A failed report for a file of no tenant or upload of ours; nothing else is written."""
        report: dict[str, Any] = {
            "upload_id": upload_id,
            "status": "failed",
            "accepted": 0,
            "rejected": 0,
            "validation_errors": [{"row": 0, "field": field, "message": message}],
        }
        self._store.put_json(f"{key}.report.json", report)
        return DroppedFile(report)
