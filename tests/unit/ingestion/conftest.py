"""Shared fixtures for the ingestion validation tests.

Every test goes through the ``validate`` fixture, which checks the result's invariants (counts add
up, exact canonical schema, bounded and ordered issue lists, Parquet round trip) on every case.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from functions.ingestion import tables
from functions.ingestion.validation import (
    ValidationResult,
    validate_interactions_csv,
    validate_interactions_records,
    validate_items_csv,
    validate_items_records,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingestion"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def check_invariants(result: ValidationResult) -> ValidationResult:
    """What must hold for any input at all."""
    assert result.rows_received == result.table.num_rows + result.rejected
    assert result.accepted == result.table.num_rows
    assert result.table.schema.equals(tables.ITEMS_SCHEMA) or result.table.schema.equals(
        tables.INTERACTIONS_SCHEMA
    )
    assert len(result.errors) <= tables.MAX_LISTED_ISSUES
    assert len(result.warnings) <= tables.MAX_LISTED_ISSUES
    assert result.errors_truncated >= 0 and result.warnings_truncated >= 0
    # Every rejected row is explained (unless the list was cut), and only rejected rows are.
    error_rows = {issue.row for issue in result.errors}
    assert len(error_rows) <= result.rejected
    if result.errors_truncated == 0:
        assert len(error_rows) == result.rejected
    assert [i.row for i in result.errors] == sorted(i.row for i in result.errors)
    assert all(1 <= issue.row <= result.rows_received for issue in result.errors + result.warnings)
    assert all(issue.message for issue in result.errors + result.warnings)
    # Non-nullable columns really hold no nulls, so the Parquet writer accepts the table.
    for column_field in result.table.schema:
        if not column_field.nullable:
            assert result.table.column(column_field.name).null_count == 0, column_field.name
    sink = io.BytesIO()
    pq.write_table(result.table, sink)
    sink.seek(0)
    assert pq.read_table(sink).num_rows == result.accepted
    return result


class Validate:
    """The four validators, with invariants checked on every result."""

    def items_csv(self, data: bytes, *, now: datetime = NOW) -> ValidationResult:
        return check_invariants(validate_items_csv(data, now=now))

    def interactions_csv(
        self,
        data: bytes,
        *,
        upload_id: str = "upload-1",
        now: datetime = NOW,
        known_item_ids: frozenset[str] | None = None,
    ) -> ValidationResult:
        return check_invariants(
            validate_interactions_csv(data, upload_id=upload_id, now=now, known_item_ids=known_item_ids)
        )

    def items_records(self, records: list[Any], *, now: datetime = NOW) -> ValidationResult:
        return check_invariants(validate_items_records(records, now=now))

    def interactions_records(
        self,
        records: list[Any],
        *,
        upload_id: str = "upload-1",
        now: datetime = NOW,
        known_item_ids: frozenset[str] | None = None,
    ) -> ValidationResult:
        return check_invariants(
            validate_interactions_records(
                records, upload_id=upload_id, now=now, known_item_ids=known_item_ids
            )
        )


@pytest.fixture
def validate() -> Validate:
    return Validate()


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read
