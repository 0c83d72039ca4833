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
    merge_results,
    stream_interactions_csv,
    stream_items_csv,
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


def chunk_sizes(data: bytes) -> tuple[int, ...]:
    """Chunk sizes every CSV case is also read in: a row per chunk (the smallest cut) for small files,
    and a handful of chunks for every file."""
    return (1, 97) if len(data) < 4096 else (len(data) // 5 + 1,)


def read_block(data: bytes) -> int:
    """Read blocks that split rows, header and line breaks anywhere (an S3 body is read like that)."""
    return 7 if len(data) < 4096 else 4099


def same_result(whole: ValidationResult, chunked: ValidationResult) -> None:
    """A file read in chunks gives exactly what it gives read whole."""
    assert chunked.table.equals(whole.table)
    assert (chunked.rows_received, chunked.rejected) == (whole.rows_received, whole.rejected)
    assert chunked.errors == whole.errors
    assert chunked.warnings == whole.warnings
    assert (chunked.errors_truncated, chunked.warnings_truncated) == (
        whole.errors_truncated,
        whole.warnings_truncated,
    )


def _in_chunks(data: bytes, block: int) -> list[bytes]:
    """The source's bytes in blocks of ``block`` (as an S3 body is read), not aligned to rows."""
    return [data[start : start + block] for start in range(0, len(data), block)] or [b""]


class Validate:
    """The four validators, with invariants checked on every result.

    Every CSV case also runs through the chunked reader with tiny chunks and odd read blocks, and must
    give the same result, or the same refusal, as the file read whole.
    """

    def items_csv(self, data: bytes, *, now: datetime = NOW) -> ValidationResult:
        whole = _outcome(lambda: validate_items_csv(data, now=now))
        for size in chunk_sizes(data):
            chunked = _outcome(
                lambda size=size: merge_results(
                    stream_items_csv(lambda: _in_chunks(data, read_block(data)), now=now, chunk_bytes=size)
                )
            )
            _same_outcome(whole, chunked)
        return check_invariants(_result(whole))

    def interactions_csv(
        self,
        data: bytes,
        *,
        upload_id: str = "upload-1",
        now: datetime = NOW,
        known_item_ids: frozenset[str] | None = None,
    ) -> ValidationResult:
        whole = _outcome(
            lambda: validate_interactions_csv(
                data, upload_id=upload_id, now=now, known_item_ids=known_item_ids
            )
        )
        for size in chunk_sizes(data):
            chunked = _outcome(
                lambda size=size: merge_results(
                    stream_interactions_csv(
                        lambda: _in_chunks(data, read_block(data)),
                        upload_id=upload_id,
                        now=now,
                        known_item_ids=known_item_ids,
                        chunk_bytes=size,
                    )
                )
            )
            _same_outcome(whole, chunked)
        return check_invariants(_result(whole))

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


Outcome = ValidationResult | Exception


def _outcome(run: Callable[[], ValidationResult]) -> Outcome:
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - compared below, then raised again by _result
        return exc


def _same_outcome(whole: Outcome, chunked: Outcome) -> None:
    if isinstance(whole, Exception) or isinstance(chunked, Exception):
        assert type(chunked) is type(whole) and str(chunked) == str(whole), (whole, chunked)
        return
    same_result(whole, chunked)


def _result(outcome: Outcome) -> ValidationResult:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


@pytest.fixture
def validate() -> Validate:
    return Validate()


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read
