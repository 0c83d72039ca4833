"""The intake: one dispatch for every source, and the after-effects of stored interactions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.ingestion.intake import Intake, Payload
from functions.ingestion.service import IngestReport, Kind, Source

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeService:
    """Records which ingestion method each upload reached; stores ``accepted`` rows of each."""

    accepted: int = 1
    calls: list[tuple[str, Source]] = field(default_factory=list)

    def _report(self, method: str, kind: Kind, source: Source, upload_id: str) -> IngestReport:
        self.calls.append((method, source))
        return IngestReport(upload_id, kind, source, self.accepted, 0, 0, [], [], NOW)

    def ingest_items_csv(
        self, _tenant_id: str, _data: bytes, *, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        assert now == NOW
        return self._report("items_csv", "items", source, upload_id)

    def ingest_interactions_csv(
        self, _tenant_id: str, _data: bytes, *, upload_id: str, now: datetime, source: Source
    ) -> IngestReport:
        assert now == NOW
        return self._report("interactions_csv", "interactions", source, upload_id)

    def ingest_items_records(
        self, _tenant_id: str, _records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        assert now == NOW
        return self._report("items_records", "items", "api-json", upload_id)

    def ingest_interaction_records(
        self, _tenant_id: str, _records: list[dict[str, Any]], *, upload_id: str, now: datetime
    ) -> IngestReport:
        assert now == NOW
        return self._report("interaction_records", "interactions", "api-json", upload_id)


@dataclass
class FakeTenants:
    marked: list[str] = field(default_factory=list)

    def mark_has_data(self, tenant_id: str) -> bool:
        self.marked.append(tenant_id)
        return True

    def get(self, tenant_id: str) -> str:
        return tenant_id


@dataclass
class FakeSchedules:
    reconciled: list[object] = field(default_factory=list)

    def reconcile(self, tenant: object) -> str:
        self.reconciled.append(tenant)
        return "updated"


def _intake(
    service: FakeService, tenants: FakeTenants, schedules: FakeSchedules | None
) -> tuple[Intake, list[int]]:
    built: list[int] = []

    def provide() -> FakeSchedules | None:
        built.append(1)
        return schedules

    intake = Intake(service, None, tenants, None, provide)  # type: ignore[arg-type]
    return intake, built


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("items", Payload.of_csv(b"csv", "api-csv"), ("items_csv", "api-csv")),
        ("items", Payload.of_csv(b"csv", "drop-folder"), ("items_csv", "drop-folder")),
        ("items", Payload.of_records([{}]), ("items_records", "api-json")),
        ("interactions", Payload.of_csv(b"csv", "api-csv"), ("interactions_csv", "api-csv")),
        ("interactions", Payload.of_csv(b"csv", "drop-folder"), ("interactions_csv", "drop-folder")),
        ("interactions", Payload.of_records([{}]), ("interaction_records", "api-json")),
    ],
)
def test_each_kind_and_format_reaches_its_own_validation(
    kind: Kind, payload: Payload, expected: tuple[str, Source]
) -> None:
    service = FakeService()
    intake, _ = _intake(service, FakeTenants(), FakeSchedules())

    report = intake.ingest("t1", kind, payload, upload_id="upload_1", now=NOW)

    assert service.calls == [expected]
    assert (report.kind, report.source, report.upload_id) == (kind, expected[1], "upload_1")


def test_stored_interactions_mark_the_tenant_and_reconcile_its_schedule() -> None:
    tenants, schedules = FakeTenants(), FakeSchedules()
    intake, _ = _intake(FakeService(accepted=3), tenants, schedules)

    intake.ingest("t1", "interactions", Payload.of_records([{}]), upload_id="u", now=NOW)

    assert tenants.marked == ["t1"]
    assert schedules.reconciled == ["t1"]


@pytest.mark.parametrize(("kind", "accepted"), [("items", 5), ("interactions", 0)])
def test_items_or_nothing_stored_leave_the_schedule_alone(kind: Kind, accepted: int) -> None:
    tenants, schedules = FakeTenants(), FakeSchedules()
    intake, built = _intake(FakeService(accepted=accepted), tenants, schedules)

    intake.ingest("t1", kind, Payload.of_csv(b"csv", "api-csv"), upload_id="u", now=NOW)

    assert (tenants.marked, schedules.reconciled, built) == ([], [], [])


def test_without_scheduling_the_tenant_is_not_touched() -> None:
    tenants = FakeTenants()
    intake, built = _intake(FakeService(accepted=2), tenants, None)

    intake.ingest("t1", "interactions", Payload.of_csv(b"csv", "drop-folder"), upload_id="u", now=NOW)

    assert tenants.marked == [] and built == [1]
