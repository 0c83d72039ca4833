"""Validation of catalogue and interaction uploads (CSV files and JSON records) into canonical tables.

Pure logic: bytes or dicts in, a :class:`ValidationResult` out; no AWS, no HTTP. The API upload, the
S3 drop-folder handler and JSON event tracking all call these four functions, so a row is judged
the same way whichever door it came through.

Modules: ``decoding`` (CSV bytes to text columns), ``records`` (JSON records to text columns),
``issues`` (the result and its issue log), ``columns`` (the column checks) and ``rules`` (which
checks run on items and on interactions, and the tables they build).

How it works, and why:

* Every column is first read as text (pyarrow's CSV reader, one thread) and then checked and
  converted column-wise with ``pyarrow.compute``. Python runs per row only for rows that fail, and
  only for the first :data:`~functions.ingestion.tables.MAX_LISTED_ISSUES` of them, which keeps a
  100,000-row file well under a second on one core.
* A bad row never sinks the file: it is rejected with one :class:`RowIssue` per bad field and the
  other rows are accepted. Only problems that make the file unreadable as a whole (no header, unknown
  or missing columns, no rows) raise :class:`FileRejectedError`.
* ``rows_received == accepted + rejected`` always holds (checked when a result is built).

Rules a caller may need to explain to a shop:

* Values are stripped of surrounding ASCII whitespace; an empty value counts as absent.
* Ids (item, user, event, recommendation): 1-128 characters, a letter or digit first, then letters,
  digits and ``_ . : @ / -`` (:data:`~functions.ingestion.tables.ID_PATTERN`).
* Items' optional ``available``: true/false, 1/0 or yes/no in any case (JSON also takes booleans);
  empty or absent means available. An unavailable item stays in the catalogue but is never served.
* Timestamps: ISO-8601 date and time, ``T`` or a space between them, seconds and fractions optional,
  then ``Z`` or an offset (``+02:00``, ``+0200``, ``+02``). A timestamp without a zone is taken as UTC,
  because shop exports commonly omit it and an hour's shift matters little to recommendations.
  Fractions beyond milliseconds are truncated. Accepted range: 2000-01-01 to ``now`` + 1 day.
* Duplicates within one upload: a repeated ``item_id`` (items) or non-empty ``event_id``
  (interactions) rejects the later row. Only rows that pass every other check take part, so the first
  *accepted* row wins and nothing is rejected for clashing with a row that was itself rejected.
* CSV ``row`` numbers count data records from 1 (the line after the header); blank lines are not
  records. Rows with the wrong number of fields or bytes that are not UTF-8 are rejected whole
  (field ``_row``).
* A quoted value may span lines only in ``description``. A quote that joins lines anywhere else, or
  is still open at the end of the file, rejects its row (reported where the quote opened) and each
  line it swallowed, which counts as a row of its own: accepted + rejected is the lines received.
* Hard caps, checked in linear passes before parsing, refuse the whole file with a short message:
  header line, column count, line length, lines per file (``schema.MAX_*``). Echoed values are
  clipped to 60 characters, so no answer grows with the input.
* Prices and revenues lie in 0..``schema.MAX_AMOUNT``; positions in 0..``schema.MAX_POSITION``.
* JSON records use the CSV's names as keys; interactions may also nest ``source``, ``position``,
  ``revenue`` and ``recommendation_id`` under ``context`` (errors then name ``context.<key>``).
  Text fields must be JSON strings; numeric fields may be numbers or numeric strings; ``null`` means
  absent; a missing ``timestamp`` means ``now``. Unknown keys and wrong types reject the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

# Every error class lives in functions.common.errors; re-exported here so callers of this package find it.
from functions.common.errors import FileRejectedError
from functions.ingestion import tables as sc
from functions.ingestion.validation.chunks import CHUNK_BYTES, ByteSource, bytes_source, plan_csv, read_chunks
from functions.ingestion.validation.columns import SeenValues, iso_ms
from functions.ingestion.validation.issues import IssueTally, RowIssue, ValidationResult, merge_results
from functions.ingestion.validation.records import INTERACTION_KEY_KINDS, ITEM_KEY_KINDS, records_to_raw
from functions.ingestion.validation.rules import validate_interactions, validate_items

__all__ = [
    "CHUNK_BYTES",
    "ByteSource",
    "FileRejectedError",
    "IssueTally",
    "merge_results",
    "RowIssue",
    "ValidationResult",
    "bytes_source",
    "stream_interactions_csv",
    "stream_items_csv",
    "validate_interactions_csv",
    "validate_interactions_records",
    "validate_items_csv",
    "validate_items_records",
]


def validate_items_csv(data: bytes, *, now: datetime) -> ValidationResult:
    """Validate an items CSV (``item_id,title,category,price,brand[,description]``).

    Raises :class:`FileRejectedError` when the file as a whole is unusable.
    """
    return merge_results(stream_items_csv(bytes_source(data), now=now))


def stream_items_csv(
    source: ByteSource, *, now: datetime, chunk_bytes: int | None = None
) -> Iterator[ValidationResult]:
    """Validate an items CSV chunk by chunk (rows numbered as in the whole file).

    The file's caps and header are checked before this returns (:class:`FileRejectedError`); a chunk
    pyarrow cannot read raises it while iterating.
    """
    plan = plan_csv(
        source,
        sc.ITEMS_CSV_REQUIRED,
        sc.ITEMS_CSV_OPTIONAL,
        max_lines=sc.MAX_CSV_LINES,
        chunk_bytes=chunk_bytes,
    )
    moment = _require_aware(now)
    seen = SeenValues()
    return (
        validate_items(raw, now=moment, seen=seen)
        for raw in read_chunks(source, plan, multiline=("description",))
    )


def validate_interactions_csv(
    data: bytes, *, upload_id: str, now: datetime, known_item_ids: frozenset[str] | None
) -> ValidationResult:
    """Validate an interactions CSV (``user_id,item_id,interaction_type,timestamp[,rating]`` + extras).

    Rows for items outside ``known_item_ids`` (when given) are accepted with a warning.
    Raises :class:`FileRejectedError` when the file as a whole is unusable.
    """
    chunks = stream_interactions_csv(
        bytes_source(data), upload_id=upload_id, now=now, known_item_ids=known_item_ids
    )
    return merge_results(chunks)


def stream_interactions_csv(
    source: ByteSource,
    *,
    upload_id: str,
    now: datetime,
    known_item_ids: frozenset[str] | None,
    chunk_bytes: int | None = None,
) -> Iterator[ValidationResult]:
    """Validate an interactions CSV chunk by chunk; see :func:`stream_items_csv`.

    A repeated ``event_id`` is rejected across chunks as within one.
    """
    plan = plan_csv(
        source,
        sc.INTERACTIONS_CSV_REQUIRED,
        sc.INTERACTIONS_CSV_OPTIONAL,
        max_lines=sc.MAX_INTERACTION_CSV_LINES,
        chunk_bytes=chunk_bytes,
    )
    moment = _require_aware(now)
    known = _known_array(known_item_ids)
    seen = SeenValues()
    return (
        validate_interactions(raw, upload_id=upload_id, now=moment, known_item_ids=known, seen=seen)
        for raw in read_chunks(source, plan)
    )


def validate_items_records(records: list[dict[str, Any]], *, now: datetime) -> ValidationResult:
    """Validate items given as JSON objects with the CSV's keys; prices may be numbers or strings."""
    raw = records_to_raw(records, ITEM_KEY_KINDS, context_keys=())
    return validate_items(raw, now=_require_aware(now))


def validate_interactions_records(
    records: list[dict[str, Any]],
    *,
    upload_id: str,
    now: datetime,
    known_item_ids: frozenset[str] | None,
) -> ValidationResult:
    """Validate interaction events given as JSON objects (walkthrough Step 3.3).

    ``context`` (``source``, ``position``, ``revenue``, ``recommendation_id``) is flattened into
    columns; a missing ``timestamp`` means ``now``.
    """
    now = _require_aware(now)
    raw = records_to_raw(
        records,
        INTERACTION_KEY_KINDS,
        context_keys=sc.INTERACTION_CONTEXT_KEYS,
        default_timestamp=iso_ms(now),
    )
    return validate_interactions(
        raw, upload_id=upload_id, now=now, known_item_ids=_known_array(known_item_ids)
    )


def _known_array(known_item_ids: frozenset[str] | None) -> pa.Array | None:
    """The catalogue's ids as one Arrow array, built once per upload rather than per chunk."""
    return None if known_item_ids is None else pa.array(list(known_item_ids), pa.string())


def _require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)
