"""Validation of catalogue and interaction uploads (CSV files and JSON records) into canonical tables.

Pure logic: bytes or dicts in, a :class:`ValidationResult` out; no AWS, no HTTP. The API upload, the
S3 drop-folder handler and JSON event tracking all call these four functions, so a row is judged
the same way whichever door it came through.

How it works, and why:

* Every column is first read as text (pyarrow's CSV reader, one thread) and then checked and
  converted column-wise with ``pyarrow.compute``. Python runs per row only for rows that fail, and
  only for the first :data:`~functions.ingestion.schema.MAX_LISTED_ISSUES` of them, which keeps a
  100,000-row file well under a second on one core.
* A bad row never sinks the file: it is rejected with one :class:`RowIssue` per bad field and the
  other rows are accepted. Only problems that make the file unreadable as a whole (no header, unknown
  or missing columns, no rows) raise :class:`FileRejectedError`.
* ``rows_received == accepted + rejected`` always holds (checked when a result is built).

Rules a caller may need to explain to a shop:

* Values are stripped of surrounding ASCII whitespace; an empty value counts as absent.
* Ids (item, user, event, recommendation): 1-128 characters, a letter or digit first, then letters,
  digits and ``_ . : @ / -`` (:data:`~functions.ingestion.schema.ID_PATTERN`).
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

import codecs
import csv
import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

# The lead keeps every error class in one module; re-exported here so callers of this module find it.
from functions.common.errors import FileRejectedError
from functions.ingestion import schema as sc

__all__ = [
    "FileRejectedError",
    "RowIssue",
    "ValidationResult",
    "validate_interactions_csv",
    "validate_interactions_records",
    "validate_items_csv",
    "validate_items_records",
]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RowIssue:
    """One problem with one field of one row; ``row`` is the 1-based data row (or JSON element)."""

    row: int
    field: str
    message: str


@dataclass(frozen=True)
class ValidationResult:
    """Accepted rows in the canonical schema, with counts and the reasons for rejections.

    ``errors``/``warnings`` list at most :data:`~functions.ingestion.schema.MAX_LISTED_ISSUES` issues
    each, in row order; ``errors_truncated``/``warnings_truncated`` count the ones left out.
    """

    table: pa.Table
    rows_received: int
    rejected: int
    errors: list[RowIssue]
    warnings: list[RowIssue]
    errors_truncated: int = 0
    warnings_truncated: int = 0

    def __post_init__(self) -> None:
        # The API promises accepted + rejected == received; a violation is a bug here, not bad input.
        if self.rows_received != self.table.num_rows + self.rejected:
            raise ValueError(
                f"inconsistent counts: received {self.rows_received}, "
                f"accepted {self.table.num_rows}, rejected {self.rejected}"
            )

    @property
    def accepted(self) -> int:
        """Number of rows stored."""
        accepted: int = self.table.num_rows
        return accepted


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


def validate_items_csv(data: bytes, *, now: datetime) -> ValidationResult:
    """Validate an items CSV (``item_id,title,category,price,brand[,description]``).

    Raises :class:`FileRejectedError` when the file as a whole is unusable.
    """
    raw = _read_csv(data, sc.ITEMS_CSV_REQUIRED, sc.ITEMS_CSV_OPTIONAL, multiline=("description",))
    return _validate_items(raw, now=_require_aware(now))


def validate_interactions_csv(
    data: bytes, *, upload_id: str, now: datetime, known_item_ids: frozenset[str] | None
) -> ValidationResult:
    """Validate an interactions CSV (``user_id,item_id,interaction_type,timestamp[,rating]`` + extras).

    Rows for items outside ``known_item_ids`` (when given) are accepted with a warning.
    Raises :class:`FileRejectedError` when the file as a whole is unusable.
    """
    raw = _read_csv(data, sc.INTERACTIONS_CSV_REQUIRED, sc.INTERACTIONS_CSV_OPTIONAL)
    return _validate_interactions(
        raw, upload_id=upload_id, now=_require_aware(now), known_item_ids=known_item_ids
    )


def validate_items_records(records: list[dict[str, Any]], *, now: datetime) -> ValidationResult:
    """Validate items given as JSON objects with the CSV's keys; prices may be numbers or strings."""
    raw = _records_to_raw(records, _ITEM_KEY_KINDS, context_keys=())
    return _validate_items(raw, now=_require_aware(now))


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
    raw = _records_to_raw(
        records,
        _INTERACTION_KEY_KINDS,
        context_keys=sc.INTERACTION_CONTEXT_KEYS,
        default_timestamp=_iso_ms(now),
    )
    return _validate_interactions(raw, upload_id=upload_id, now=now, known_item_ids=known_item_ids)


# --------------------------------------------------------------------------------------------------
# Issue bookkeeping
# --------------------------------------------------------------------------------------------------


@dataclass
class _IssueGroup:
    """Rows failing one vectorised check; messages are made only for rows that get listed."""

    field: str
    indices: IntArray
    explain: Callable[[int], str]


@dataclass
class _IssueLog:
    """Collects issues for the rows of a text table (and for rows the reader already dropped)."""

    row_numbers: IntArray
    field_order: Sequence[str]
    bad: BoolArray = field(init=False)
    _row_level: BoolArray = field(init=False)
    # Rows already rejected for a field, by field: row indices, not masks, so that a record with
    # thousands of made-up keys costs one entry per key, never a mask of every row per key.
    _blocked: dict[str, list[int]] = field(init=False, default_factory=dict)
    _groups: list[_IssueGroup] = field(init=False, default_factory=list)
    _singles: list[tuple[int, str, str]] = field(init=False, default_factory=list)
    _outside: list[RowIssue] = field(init=False, default_factory=list)
    _labels: dict[str, BoolArray] = field(init=False, default_factory=dict)
    #: Lines an unbalanced quote joined to a rejected row, beyond those listed: counted only.
    swallowed: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        n = len(self.row_numbers)
        self.bad = np.zeros(n, dtype=np.bool_)
        self._row_level = np.zeros(n, dtype=np.bool_)

    def check(self, name: str, ok: pa.Array | BoolArray, explain: Callable[[int], str]) -> None:
        """Reject rows where ``ok`` is false, unless that row or field was already reported."""
        fail = ~_to_numpy_bool(ok) & ~self._row_level
        blocked = self._blocked.get(name)
        if blocked is not None:
            fail[np.array(blocked, dtype=np.int64)] = False
        indices = np.flatnonzero(fail)
        if indices.size:
            self.bad[indices] = True
            self._groups.append(_IssueGroup(name, indices, explain))

    def add(self, index: int, name: str, message: str) -> None:
        """Reject one row for one field, found before the vectorised checks (JSON types, UTF-8)."""
        self.bad[index] = True
        self._singles.append((index, name, message))
        if name == "_row":
            self._row_level[index] = True
        else:
            self._blocked.setdefault(name, []).append(index)

    def add_outside(self, issue: RowIssue) -> None:
        """Record a row the CSV reader could not turn into a table row (wrong field count)."""
        self._outside.append(issue)

    def label_from_context(self, name: str, mask: BoolArray) -> None:
        """Report ``name`` as ``context.<name>`` for rows whose value came from the JSON context."""
        self._labels[name] = mask

    @property
    def rejected(self) -> int:
        return int(self.bad.sum()) + len(self._outside) + self.swallowed

    def finish(self) -> tuple[list[RowIssue], int]:
        """The first issues in (row, column) order, and how many were left out."""
        limit = sc.MAX_LISTED_ISSUES
        rows = self.row_numbers
        rejected_rows = np.concatenate(
            [rows[self.bad], np.array([i.row for i in self._outside], dtype=np.int64)]
        )
        total = (
            sum(g.indices.size for g in self._groups)
            + len(self._singles)
            + len(self._outside)
            + self.swallowed
        )
        if total == 0:
            return [], 0
        # Rows past the limit-th rejected row cannot be listed, so their messages are never built.
        cutoff = np.partition(rejected_rows, limit - 1)[limit - 1] if rejected_rows.size > limit else np.inf
        rank = {name: i for i, name in enumerate(self.field_order)}
        pending: list[tuple[int, int, str, Callable[[], str]]] = []
        for group in self._groups:
            for index in group.indices[rows[group.indices] <= cutoff]:
                pending.append(self._pending(int(index), group.field, rank, group.explain))
        for index, name, message in self._singles:
            if rows[index] <= cutoff:
                pending.append(self._pending(index, name, rank, _constant(message)))
        for issue in self._outside:
            if issue.row <= cutoff:
                pending.append((issue.row, -1, issue.field, _constant(issue.message)))
        pending.sort(key=lambda p: (p[0], p[1]))
        listed = [RowIssue(row, name, make()) for row, _, name, make in pending[:limit]]
        return listed, total - len(listed)

    def _pending(
        self, index: int, name: str, rank: Mapping[str, int], explain: Callable[[int], str]
    ) -> tuple[int, int, str, Callable[[], str]]:
        label = self._labels.get(name)
        shown = f"context.{name}" if label is not None and label[index] else name
        return (
            int(self.row_numbers[index]),
            rank.get(name, len(rank)),
            shown,
            lambda: explain(index),
        )


def _constant(message: str) -> Callable[..., str]:
    return lambda *_: message


def _to_numpy_bool(mask: pa.Array | BoolArray) -> BoolArray:
    if isinstance(mask, np.ndarray):
        return mask
    filled = pc.fill_null(mask, False)
    result: BoolArray = filled.to_numpy(zero_copy_only=False)
    return result


# --------------------------------------------------------------------------------------------------
# CSV reading
# --------------------------------------------------------------------------------------------------

_LINE_BREAK = re.compile(rb"\r\n|\n|\r")
_NON_SPACE = re.compile(rb"\S")
_LEADING_BREAKS = re.compile(rb"[\r\n]*")
_BOM = b"\xef\xbb\xbf"
# Bytes that are not UTF-8 are replaced by NUL before parsing, so the reader keeps them in their row
# and the row can be found afterwards. NUL is never valid in any field, so the marker cannot hide
# a good row.
_NUL = "\x00"


def _replace_with_nul(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return _NUL * (exc.end - exc.start), exc.end


_NUL_ERRORS = "embedrec.ingestion.nul"
codecs.register_error(_NUL_ERRORS, _replace_with_nul)


@dataclass
class _RawTable:
    """Text columns (stripped, never null; "" = absent) plus where each row came from."""

    columns: dict[str, pa.Array]
    num_rows: int
    row_numbers: IntArray
    rows_received: int
    pre_issues: list[tuple[int, str, str]] = field(default_factory=list)
    outside: list[RowIssue] = field(default_factory=list)
    context_rows: dict[str, BoolArray] = field(default_factory=dict)
    swallowed: int = 0

    def get(self, name: str) -> pa.Array | None:
        return self.columns.get(name)


def _read_csv(
    data: bytes, required: Sequence[str], optional: Sequence[str], multiline: Sequence[str] = ()
) -> _RawTable:
    names, body_start = _read_header(data, required, optional)
    if _NON_SPACE.search(data, body_start) is None:
        raise FileRejectedError("the file has a header but no data rows")
    _check_lines(data, body_start)
    body: bytes | pa.Buffer = pa.py_buffer(data)[body_start:]
    has_bad_bytes = not data.isascii() and not _is_utf8(data)
    if has_bad_bytes:
        body = data[body_start:].decode("utf-8", errors=_NUL_ERRORS).encode("utf-8")
    ragged: list[pa_csv.InvalidRow] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(body),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 22),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                # Checked above (or made valid by the NUL replacement).
                check_utf8=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        # Arrow's message quotes the offending row: clip it so the answer is not sized by the file.
        raise FileRejectedError(f"the file cannot be parsed as CSV: {_clip(str(exc), 200)}") from exc
    untrimmed = {name: table.column(name).combine_chunks() for name in names}
    columns = {name: pc.ascii_trim_whitespace(column) for name, column in untrimmed.items()}
    row_numbers, outside = _csv_row_numbers(table.num_rows, ragged, len(names))
    raw = _RawTable(
        columns,
        table.num_rows,
        row_numbers,
        rows_received=table.num_rows + len(ragged),
        outside=outside,
    )
    quotes = data.count(b'"', body_start)
    if quotes:
        _number_physical_rows(
            raw, untrimmed, ragged, unclosed_at_end=quotes % 2 == 1, multiline=frozenset(multiline)
        )
    if has_bad_bytes:
        _flag_nul_rows(raw, nul_in_source=b"\x00" in data)
    return raw


def _check_lines(data: bytes, start: int) -> None:
    """Refuse, in one vectorised pass, a body with too many lines or a line too long for any valid row."""
    lines = max(data.count(b"\n", start), data.count(b"\r", start))
    if lines > sc.MAX_CSV_LINES:
        raise FileRejectedError(
            f"the file has more than {sc.MAX_CSV_LINES:,} lines; split it into several files"
        )
    view = np.frombuffer(data, dtype=np.uint8)[start:]
    breaks = np.flatnonzero((view == ord("\n")) | (view == ord("\r")))
    lengths = np.diff(breaks, prepend=-1, append=view.size) - 1
    longest = int(np.argmax(lengths))
    if lengths[longest] > sc.MAX_LINE_BYTES:
        line = int(np.count_nonzero(view[: breaks[longest - 1] + 1 if longest else 0] == ord("\n"))) + 1
        raise FileRejectedError(
            f"data line {line} is longer than {sc.MAX_LINE_BYTES:,} bytes, more than any valid row; "
            "is this the right file?"
        )


# A line break that starts a non-blank line (blank lines are not rows); the last break of a value is
# followed by at least the closing quote, so it always starts a non-blank line.
_LINE_START = r"(\r\n|\n|\r)[ \t]*([^\s]|$)"
_LINE_START_RE = re.compile(_LINE_START)
_ANY_BREAK = r"[\r\n]"


def _number_physical_rows(
    raw: _RawTable,
    untrimmed: Mapping[str, pa.Array],
    ragged: Sequence[pa_csv.InvalidRow],
    *,
    unclosed_at_end: bool,
    multiline: frozenset[str],
) -> None:
    """Number rows by the data line they start on, and reject rows an unbalanced quote joined.

    A quoted value may span lines only in a multi-line column (``description``). Anywhere else, or
    when a quote is still open at the end of the file, the lines after the opening quote were read
    into one row: that row is rejected where the quote opened, and every line it swallowed counts as
    a rejected row too, so accepted + rejected equals the data lines received.
    """
    records = raw.rows_received
    extra = np.zeros(records + 1, dtype=np.int64)  # by record number (1-based)
    broken = np.zeros(records + 1, dtype=np.bool_)
    for name, column in untrimmed.items():
        starts = pc.count_substring_regex(column, _LINE_START).to_numpy(zero_copy_only=False)
        extra[raw.row_numbers] += starts
        if name not in multiline:
            broken[raw.row_numbers] |= _to_numpy_bool(pc.match_substring_regex(column, _ANY_BREAK))
    ragged_numbers = [issue.row for issue in raw.outside]
    for number, row in zip(ragged_numbers, ragged, strict=True):
        extra[number] = len(_LINE_START_RE.findall(row.text))
        broken[number] = "\n" in row.text or "\r" in row.text
    if unclosed_at_end:
        broken[records] = True  # a quote still open at the end swallowed everything after it
        last = np.flatnonzero(raw.row_numbers == records)
        if last.size and any(
            re.search(r"[\r\n][ \t]*\Z", column[int(last[0])].as_py()) for column in untrimmed.values()
        ):
            extra[records] -= 1  # the file's final line break, with no closing quote after it
    extra[~broken] = 0  # a multi-line description is one row
    if not extra.any():
        return
    # Each swallowed line counts as a row of its own, so numbers run on after it.
    first_row = np.arange(records + 1, dtype=np.int64)
    first_row[1:] += np.cumsum(extra)[:-1]
    for index in np.flatnonzero(broken[raw.row_numbers]):
        number = int(raw.row_numbers[index])
        message = _swallow_message(int(extra[number]), unclosed_at_end, number == records)
        raw.pre_issues.append((int(index), "_row", message))
    outside = [
        RowIssue(
            int(first_row[issue.row]),
            issue.field,
            _swallow_message(int(extra[issue.row]), unclosed_at_end, issue.row == records)
            if broken[issue.row]
            else issue.message,
        )
        for issue in raw.outside
    ]
    # Every swallowed line is rejected; the first ones are listed (the rest only counted).
    for joined in np.flatnonzero(extra).tolist():
        opened = int(first_row[joined])
        shown = min(int(extra[joined]), max(sc.MAX_LISTED_ISSUES - len(outside), 0))
        outside.extend(
            RowIssue(opened + k, "_row", f"part of row {opened}: its unbalanced quote swallowed this line")
            for k in range(1, shown + 1)
        )
        raw.swallowed += int(extra[joined]) - shown
    raw.outside = outside
    raw.row_numbers = first_row[raw.row_numbers]
    raw.rows_received += int(extra.sum())


def _swallow_message(lines: int, unclosed_at_end: bool, last: bool) -> str:
    if unclosed_at_end and last:
        return (
            f"a quote opened on this row is never closed (an unbalanced quote): the {lines} line(s) "
            "after it were read into this row and are rejected with it"
        )
    return (
        f"an unbalanced quote on this row joined it with the next {lines} line(s); they are rejected with it"
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_header(data: bytes, required: Sequence[str], optional: Sequence[str]) -> tuple[list[str], int]:
    """Column names from the first line, checked against the contract; and where the body starts.

    Bounded work whatever the header holds: the line and the column count are capped before the
    names are compared, and the message lists a few of the offending names, not all of them.
    """
    start = len(_BOM) if data.startswith(_BOM) else 0
    if _NON_SPACE.search(data, start) is None:
        raise FileRejectedError("the file is empty")
    # Blank lines before the header are harmless (the reader skips blank lines in the body too).
    leading = _LEADING_BREAKS.match(data, start)
    start = leading.end() if leading else start
    match = _LINE_BREAK.search(data, start, start + sc.MAX_HEADER_BYTES + 2)
    header_end, body_start = (match.start(), match.end()) if match else (len(data), len(data))
    expected = (
        f"expected columns: {', '.join(required)}"
        + (f" and optionally {', '.join(optional)}" if optional else "")
        + " (first line, case-sensitive)"
    )
    if header_end - start > sc.MAX_HEADER_BYTES:
        raise FileRejectedError(f"the header line is longer than {sc.MAX_HEADER_BYTES:,} bytes; {expected}")
    try:
        header = data[start:header_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejectedError("the header line is not valid UTF-8") from exc
    names = [name.strip() for name in next(csv.reader([header]), [])]
    if len(names) > sc.MAX_CSV_COLUMNS:
        raise FileRejectedError(f"the header has {len(names):,} columns; {expected}")
    counts = Counter(names)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    unknown = [name for name in counts if name not in required and name not in optional]
    missing = [name for name in required if name not in counts]
    problems = []
    if repeated:
        problems.append(f"repeated column(s): {_quoted(repeated)}")
    if missing:
        problems.append(f"missing required column(s): {_quoted(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {_quoted(unknown)}")
    if problems:
        raise FileRejectedError("; ".join(problems) + f"; {expected}")
    return names, body_start


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(_show(name, 40) for name in names)


def _csv_row_numbers(
    num_rows: int, ragged: list[pa_csv.InvalidRow], num_columns: int
) -> tuple[IntArray, list[RowIssue]]:
    """Data-row numbers of the table's rows, once rows with the wrong field count are taken out."""
    received = num_rows + len(ragged)
    # With one thread the reader always knows the record number (1 = first record after the header).
    numbers = [row.number if row.number is not None else received for row in ragged]
    outside = [
        RowIssue(number, "_row", _ragged_message(row, num_columns))
        for number, row in zip(numbers, ragged, strict=True)
    ]
    if not ragged:
        return np.arange(1, num_rows + 1, dtype=np.int64), outside
    keep = np.ones(received + 1, dtype=np.bool_)
    keep[0] = False
    keep[np.clip(np.array(numbers, dtype=np.int64), 0, received)] = False
    kept = np.flatnonzero(keep).astype(np.int64)
    if kept.size != num_rows:  # unknown numbers: fall back to sequential numbering
        kept = np.arange(1, num_rows + 1, dtype=np.int64)
    return kept, outside


def _ragged_message(row: pa_csv.InvalidRow, num_columns: int) -> str:
    message = f"expected {num_columns} fields, got {row.actual_columns}"
    if "\n" in row.text or "\r" in row.text:
        message += " (an unbalanced quote may have joined several lines)"
    return message


def _flag_nul_rows(raw: _RawTable, *, nul_in_source: bool) -> None:
    message = "not valid UTF-8" + (" or contains a NUL byte" if nul_in_source else "")
    flagged = np.zeros(raw.num_rows, dtype=np.bool_)
    for column in raw.columns.values():
        flagged |= _to_numpy_bool(pc.match_substring(column, _NUL))
    raw.pre_issues.extend((int(i), "_row", message) for i in np.flatnonzero(flagged))


# --------------------------------------------------------------------------------------------------
# JSON records
# --------------------------------------------------------------------------------------------------

_STRING, _NUMBER, _INTEGER, _BOOLEAN = "string", "number", "integer", "boolean"
_ITEM_KEY_KINDS: dict[str, str] = {
    "item_id": _STRING,
    "title": _STRING,
    "category": _STRING,
    "price": _NUMBER,
    "brand": _STRING,
    "description": _STRING,
    "available": _BOOLEAN,
}
_INTERACTION_KEY_KINDS: dict[str, str] = {
    "event_id": _STRING,
    "user_id": _STRING,
    "item_id": _STRING,
    "interaction_type": _STRING,
    "timestamp": _STRING,
    "rating": _NUMBER,
    "source": _STRING,
    "position": _INTEGER,
    "revenue": _NUMBER,
    "recommendation_id": _STRING,
}


#: Unknown keys listed one by one per record; more are summed up in one issue, so a record with
#: thousands of made-up keys costs a few issues, not thousands.
_LISTED_UNKNOWN_KEYS = 3


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _json_text(value: object, kind: str) -> tuple[str, str | None]:
    """The value as the text a CSV cell would hold, or why it cannot be one."""
    if value is None:
        return "", None
    if kind == _BOOLEAN and isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "", "is not valid UTF-8 (unpaired surrogate)"
        return value, None
    if kind != _STRING and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and kind == _INTEGER and value.is_integer():
            return str(int(value)), None
        return repr(value), None
    wanted = {_STRING: "a string", _BOOLEAN: "true or false"}.get(kind, "a number")
    return "", f"must be {wanted}, got {_json_type(value)}"


def _records_to_raw(
    records: Sequence[object],
    kinds: Mapping[str, str],
    *,
    context_keys: Sequence[str],
    default_timestamp: str | None = None,
) -> _RawTable:
    if not records:
        raise FileRejectedError("no records: send one object or a non-empty list of objects")
    n = len(records)
    values: dict[str, list[str]] = {name: [""] * n for name in kinds}
    from_context: dict[str, BoolArray] = {name: np.zeros(n, dtype=np.bool_) for name in context_keys}
    issues: list[tuple[int, str, str]] = []
    allowed = ", ".join([*kinds, *(["context"] if context_keys else [])])
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            issues.append((index, "_row", f"must be a JSON object, got {_json_type(record)}"))
            continue
        if len(record) > len(kinds) + 1 + _LISTED_UNKNOWN_KEYS:  # not read key by key: bounded work
            issues.append((index, "_row", f"has {len(record):,} keys, more than the {len(kinds) + 1} known"))
            continue
        unknown = 0
        for key, value in record.items():
            if key == "context" and context_keys:
                _read_context(index, value, record, kinds, context_keys, values, from_context, issues)
            elif key in kinds:
                _store_json_value(index, str(key), value, kinds[key], values, issues)
            else:
                unknown += 1
                if unknown <= _LISTED_UNKNOWN_KEYS:
                    message = f"unknown key {_show(str(key))}; allowed keys: {allowed}"
                    issues.append((index, _clip(str(key)), message))
        if unknown > _LISTED_UNKNOWN_KEYS:
            issues.append((index, "_row", f"{unknown - _LISTED_UNKNOWN_KEYS} more unknown keys"))
    if default_timestamp is not None:
        values["timestamp"] = [text or default_timestamp for text in values["timestamp"]]
    columns = {
        name: pc.ascii_trim_whitespace(pa.array(texts, type=pa.string()))
        for name, texts in values.items()
        if any(texts)
    }
    raw = _RawTable(columns, n, np.arange(1, n + 1, dtype=np.int64), n, pre_issues=issues)
    raw.context_rows = from_context
    return raw


def _store_json_value(
    index: int,
    name: str,
    value: object,
    kind: str,
    values: dict[str, list[str]],
    issues: list[tuple[int, str, str]],
) -> None:
    text, problem = _json_text(value, kind)
    if problem is not None:
        issues.append((index, name, f"{name} {problem}"))
    else:
        values[name][index] = text


def _read_context(
    index: int,
    context: object,
    record: Mapping[str, object],
    kinds: Mapping[str, str],
    context_keys: Sequence[str],
    values: dict[str, list[str]],
    from_context: dict[str, BoolArray],
    issues: list[tuple[int, str, str]],
) -> None:
    if context is None:
        return
    if not isinstance(context, Mapping):
        issues.append((index, "context", f"context must be an object, got {_json_type(context)}"))
        return
    if len(context) > len(context_keys) + _LISTED_UNKNOWN_KEYS:
        message = f"context has {len(context):,} keys, more than the {len(context_keys)} allowed"
        issues.append((index, "context", message))
        return
    unknown = 0
    for key, value in context.items():
        if key not in context_keys:
            unknown += 1
            if unknown <= _LISTED_UNKNOWN_KEYS:
                message = f"unknown key {_show(str(key))} in context; allowed: {', '.join(context_keys)}"
                issues.append((index, f"context.{_clip(str(key))}", message))
            elif unknown == _LISTED_UNKNOWN_KEYS + 1:
                issues.append((index, "context", "more unknown keys in context"))
        elif key in record:
            issues.append((index, str(key), f"{key} given both at top level and in context"))
        else:
            text, problem = _json_text(value, kinds[key])
            if problem is not None:
                issues.append((index, f"context.{key}", f"context.{key} {problem}"))
            else:
                values[key][index] = text
                from_context[key][index] = True


# --------------------------------------------------------------------------------------------------
# Column checks (vectorised) and their per-row explanations (only for listed failures)
# --------------------------------------------------------------------------------------------------

# RE2 (pyarrow) and Python's re agree on these; [0-9] rather than \d because Python's \d is Unicode.
_NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER_PATTERN = r"^[+-]?[0-9]{1,10}$"
# The shape of an ISO-8601 date-time (used to word messages) ...
_TIMESTAMP_SHAPE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
# ... and the same with every field in range, so that only day-of-month overflows (02-30) are left
# for the cast to refuse; those are found with vectorised calendar arithmetic, not row by row.
_TIMESTAMP_PATTERN = (
    r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]+)?)?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$"
)
_ZONE_PATTERN = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_CONTROL_PATTERN = r"[\x00-\x1f\x7f]"
# Descriptions may keep tabs and line breaks.
_CONTROL_PATTERN_MULTILINE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_NULL_STRING = pa.scalar(None, pa.string())


def _show(value: str, limit: int = 60) -> str:
    return repr(_clip(value, limit))


def _clip(value: str, limit: int = 60) -> str:
    """At most ``limit`` characters of an echoed value: error bodies are never sized by the sender."""
    return value if len(value) <= limit else value[:limit] + "…"


def _value(column: pa.Array, index: int) -> str:
    text: str = column[index].as_py()
    return text


def _nonempty(column: pa.Array) -> pa.Array:
    return pc.greater(pc.binary_length(column), 0)


def _empty_to_null(column: pa.Array) -> pa.Array:
    return pc.if_else(_nonempty(column), column, _NULL_STRING)


def _cast_or_null(column: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast text; values the cast refuses (e.g. 2025-02-30) become null instead of failing all rows."""
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, OverflowError):
        pass
    # Bisect to the offending values: O(k log n) small casts for k bad values, on the error path only.
    failing = np.zeros(len(column), dtype=np.bool_)
    spans = [(0, len(column))]
    while spans:
        start, stop = spans.pop()
        try:
            pc.cast(column.slice(start, stop - start), target)
            continue
        except (pa.ArrowInvalid, OverflowError):
            if stop - start == 1:
                failing[start] = True
                continue
        middle = (start + stop) // 2
        spans.extend([(start, middle), (middle, stop)])
    return pc.cast(pc.if_else(pa.array(failing), _NULL_STRING, column), target)


def _check_id(log: _IssueLog, name: str, column: pa.Array, *, required: bool) -> None:
    ok = pc.match_substring_regex(column, sc.ID_PATTERN)
    if not required:
        ok = pc.or_(ok, pc.invert(_nonempty(column)))

    def explain(index: int) -> str:
        value = _value(column, index)
        if not value:
            return f"{name} is required"
        if len(value) > sc.MAX_ID_LENGTH:
            return f"{name} is longer than {sc.MAX_ID_LENGTH} characters"
        return (
            f"{name} must start with a letter or digit and contain only letters, digits and "
            f"_ . : @ / - (got {_show(value)})"
        )

    log.check(name, ok, explain)


def _check_text(
    log: _IssueLog, name: str, column: pa.Array, *, max_length: int, required: bool, multiline: bool = False
) -> None:
    control = _CONTROL_PATTERN_MULTILINE if multiline else _CONTROL_PATTERN
    length = pc.utf8_length(column)
    ok = pc.and_(pc.less_equal(length, max_length), pc.invert(pc.match_substring_regex(column, control)))
    if required:
        ok = pc.and_(ok, pc.greater(length, 0))

    def explain(index: int) -> str:
        value = _value(column, index)
        if not value:
            return f"{name} is required"
        if len(value) > max_length:
            return f"{name} is longer than {max_length} characters ({len(value)})"
        return f"{name} contains control characters (got {_show(value)})"

    log.check(name, ok, explain)


def _parse_number(column: pa.Array) -> pa.Array:
    """float64 per row; null where the text is empty or not a plain decimal number."""
    well_formed = pc.match_substring_regex(column, _NUMBER_PATTERN)
    return _cast_or_null(pc.if_else(well_formed, column, _NULL_STRING), pa.float64())


def _check_number(
    log: _IssueLog,
    name: str,
    column: pa.Array,
    *,
    required: bool,
    maximum: float | None = None,
    ceiling: float | None = None,
) -> pa.Array:
    """Finite numbers from 0 to ``maximum`` (a scale, e.g. ratings) or ``ceiling`` (an amount).

    Returns the parsed values (null where absent or bad).
    """
    numbers = _parse_number(column)
    ok = pc.and_(pc.is_finite(numbers), pc.greater_equal(numbers, 0.0))
    upper = maximum if maximum is not None else ceiling
    if upper is not None:
        ok = pc.and_(ok, pc.less_equal(numbers, upper))
    ok = pc.fill_null(ok, False)
    if not required:
        ok = pc.or_(ok, pc.invert(_nonempty(column)))

    def explain(index: int) -> str:
        value = _value(column, index)
        if not value:
            return f"{name} is required"
        number = _parse_number(pa.array([value]))[0].as_py()
        if value.lower() in _NON_FINITE or (number is not None and not np.isfinite(number)):
            return f"{name} must be a finite number, got {_show(value)}"
        if number is None:
            return f"{name} must be a number, got {_show(value)}"
        if maximum is not None:
            return f"{name} must be between 0 and {maximum:g}, got {_show(value)}"
        if ceiling is not None and number > ceiling:
            return f"{name} must be at most {ceiling:g} (a unit or parsing mistake?), got {_show(value)}"
        return f"{name} must not be negative, got {_show(value)}"

    log.check(name, ok, explain)
    return numbers


def _check_position(log: _IssueLog, column: pa.Array) -> pa.Array:
    """Optional whole number 0..2**31-1; returns int32 values (null where absent/bad)."""
    well_formed = pc.match_substring_regex(column, _INTEGER_PATTERN)
    unsigned = pc.utf8_ltrim(pc.if_else(well_formed, column, _NULL_STRING), characters="+")
    numbers = _cast_or_null(unsigned, pa.int64())
    in_range = pc.fill_null(
        pc.and_(pc.greater_equal(numbers, 0), pc.less_equal(numbers, sc.MAX_POSITION)), False
    )
    ok = pc.or_(in_range, pc.invert(_nonempty(column)))

    def explain(index: int) -> str:
        return (
            f"position must be a whole number from 0 to {sc.MAX_POSITION}, got {_show(_value(column, index))}"
        )

    log.check("position", ok, explain)
    return pc.cast(pc.if_else(in_range, numbers, pa.scalar(None, pa.int64())), pa.int32())


def _parse_timestamps(column: pa.Array) -> pa.Array:
    """Timestamps (ms, UTC); null where the text is not an accepted ISO-8601 date-time."""
    text = pc.if_else(pc.match_substring_regex(column, _TIMESTAMP_PATTERN), column, _NULL_STRING)
    # The cast refuses digits below the unit; milliseconds are plenty for interactions.
    if pc.any(pc.match_substring(text, ".")).as_py():
        text = pc.replace_substring_regex(text, r"(\.[0-9]{3})[0-9]+", r"\1")
    # A timestamp without a zone is UTC (documented above). Most files use "Z": skip the regex then.
    if not pc.all(pc.ends_with(text, "Z")).as_py():
        zoned = pc.match_substring_regex(text, _ZONE_PATTERN)
        text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, pa.scalar("Z"), pa.scalar("")))
    try:
        return pc.cast(text, sc.TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        text = pc.if_else(_day_exists(text), text, _NULL_STRING)
    return _cast_or_null(text, sc.TIMESTAMP_TYPE)


def _day_exists(text: pa.Array) -> BoolArray:
    """Whether YYYY-MM-DD (already matched by the pattern, or null) names a real calendar day."""

    def part(start: int, stop: int) -> npt.NDArray[np.int64]:
        digits = pc.utf8_slice_codeunits(text, start, stop)
        values: npt.NDArray[np.int64] = pc.fill_null(pc.cast(digits, pa.int64()), 1).to_numpy()
        return values

    year, month, day = part(0, 4), part(5, 7), part(8, 10)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[month - 1] + (
        leap & (month == 2)
    )
    exists: BoolArray = day <= days_in_month
    return exists


@functools.lru_cache(maxsize=256)
def _parse_one_timestamp(value: str) -> datetime | None:
    # Files that get a timestamp wrong tend to repeat the same wrong value; explain each once.
    moment: datetime | None = _parse_timestamps(pa.array([value], pa.string()))[0].as_py()
    return moment


def _check_timestamp(log: _IssueLog, column: pa.Array, *, now: datetime) -> pa.Array:
    parsed = _parse_timestamps(column)
    earliest = pa.scalar(sc.EARLIEST_TIMESTAMP, sc.TIMESTAMP_TYPE)
    latest = pa.scalar(now + sc.FUTURE_TOLERANCE, sc.TIMESTAMP_TYPE)
    ok = pc.and_(pc.greater_equal(parsed, earliest), pc.less_equal(parsed, latest))

    def explain(index: int) -> str:
        value = _value(column, index)
        if not value:
            return "timestamp is required"
        if re.fullmatch(_TIMESTAMP_SHAPE, value) is None:
            return f"timestamp must be an ISO-8601 date-time such as 2025-01-01T10:30:00Z, got {_show(value)}"
        moment = _parse_one_timestamp(value)
        if moment is None:
            return f"timestamp is not a valid date-time, got {_show(value)}"
        if moment < sc.EARLIEST_TIMESTAMP:
            return f"timestamp is before {sc.EARLIEST_TIMESTAMP.date().isoformat()}, got {_show(value)}"
        return f"timestamp is in the future (more than 1 day after {_iso_ms(now)}), got {_show(value)}"

    log.check("timestamp", ok, explain)
    return parsed


def _check_interaction_type(log: _IssueLog, column: pa.Array) -> pa.Array:
    lowered = pc.ascii_lower(column)
    ok = pc.is_in(lowered, value_set=pa.array(sc.INTERACTION_TYPES, pa.string()))

    def explain(index: int) -> str:
        value = _value(column, index)
        if not value:
            return "interaction_type is required"
        return f"interaction_type must be one of {', '.join(sc.INTERACTION_TYPES)}, got {_show(value)}"

    log.check("interaction_type", ok, explain)
    return lowered


def _check_duplicates(log: _IssueLog, name: str, column: pa.Array) -> None:
    """Reject later rows repeating a value of ``column`` among the rows still accepted."""
    candidates = np.flatnonzero(~log.bad & _to_numpy_bool(_nonempty(column)))
    if candidates.size < 2:
        return
    encoded = column.take(pa.array(candidates)).dictionary_encode()
    if len(encoded.dictionary) == candidates.size:
        return
    codes = encoded.indices.to_numpy()
    # Codes are numbered in order of first appearance, so return_index gives each code's first row.
    _, first_of_code = np.unique(codes, return_index=True)
    first = first_of_code[codes]
    repeats = first != np.arange(codes.size)
    first_index = np.full(len(log.bad), -1, dtype=np.int64)
    first_index[candidates[repeats]] = candidates[first[repeats]]
    rows = log.row_numbers

    def explain(index: int) -> str:
        return (
            f"duplicate {name} {_show(_value(column, index))}, "
            f"first seen at row {int(rows[first_index[index]])}"
        )

    log.check(name, first_index < 0, explain)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def _new_log(raw: _RawTable, field_order: Sequence[str]) -> _IssueLog:
    log = _IssueLog(raw.row_numbers, field_order)
    for issue in raw.outside:
        log.add_outside(issue)
    for index, name, message in raw.pre_issues:
        log.add(index, name, message)
    for name, mask in raw.context_rows.items():
        log.label_from_context(name, mask)
    log.swallowed = raw.swallowed
    return log


def _required(raw: _RawTable, name: str) -> pa.Array:
    # Required columns exist in every CSV (the header check) but may be absent from all JSON records.
    column = raw.get(name)
    return column if column is not None else pa.array([""] * raw.num_rows, pa.string())


def _constant_timestamp(moment: datetime, n: int) -> pa.Array:
    millis = int(moment.timestamp() * 1000)
    return pa.array(np.full(n, millis, dtype=np.int64), type=sc.TIMESTAMP_TYPE)


def _result(
    raw: _RawTable, log: _IssueLog, full: pa.Table, warnings: list[RowIssue], hidden: int
) -> ValidationResult:
    table = full if not log.bad.any() else full.filter(pa.array(~log.bad))
    errors, truncated = log.finish()
    return ValidationResult(
        table=table,
        rows_received=raw.rows_received,
        rejected=log.rejected,
        errors=errors,
        warnings=warnings,
        errors_truncated=truncated,
        warnings_truncated=hidden,
    )


def _validate_items(raw: _RawTable, *, now: datetime) -> ValidationResult:
    log = _new_log(raw, sc.ITEMS_JSON_KEYS)
    item_id = _required(raw, "item_id")
    _check_id(log, "item_id", item_id, required=True)
    for name, limit in (("title", sc.MAX_TITLE_LENGTH), ("category", sc.MAX_LABEL_LENGTH)):
        _check_text(log, name, _required(raw, name), max_length=limit, required=True)
    price = _check_number(log, "price", _required(raw, "price"), required=True, ceiling=sc.MAX_AMOUNT)
    _check_text(log, "brand", _required(raw, "brand"), max_length=sc.MAX_LABEL_LENGTH, required=True)
    description = raw.get("description")
    if description is not None:
        _check_text(
            log,
            "description",
            description,
            max_length=sc.MAX_DESCRIPTION_LENGTH,
            required=False,
            multiline=True,
        )
    available = _check_available(log, raw.get("available"), raw.num_rows)
    _check_duplicates(log, "item_id", item_id)
    n = raw.num_rows
    full = pa.Table.from_arrays(
        [
            item_id,
            _required(raw, "title"),
            _required(raw, "category"),
            price,
            _required(raw, "brand"),
            _empty_to_null(description) if description is not None else pa.nulls(n, pa.string()),
            _constant_timestamp(now, n),
            available,
        ],
        schema=sc.ITEMS_SCHEMA,
    )
    return _result(raw, log, full, [], 0)


def _check_available(log: _IssueLog, column: pa.Array | None, n: int) -> pa.Array:
    """Optional ``available`` flag: true/false, 1/0, yes/no (any case); empty means available."""
    if column is None:
        return pa.repeat(pa.scalar(True), n)
    lowered = pc.utf8_lower(column)
    yes = pc.is_in(lowered, value_set=pa.array(sc.AVAILABLE_TRUE))
    no = pc.is_in(lowered, value_set=pa.array(sc.AVAILABLE_FALSE))
    log.check(
        "available",
        pc.or_(pc.or_(yes, no), pc.invert(_nonempty(column))),
        lambda index: f"available must be true or false, got {_show(_value(column, index))}",
    )
    return pc.invert(no)


def _optional_text(raw: _RawTable, name: str) -> pa.Array:
    column = raw.get(name)
    return _empty_to_null(column) if column is not None else pa.nulls(raw.num_rows, pa.string())


def _validate_interactions(
    raw: _RawTable, *, upload_id: str, now: datetime, known_item_ids: frozenset[str] | None
) -> ValidationResult:
    n = raw.num_rows
    log = _new_log(raw, sc.INTERACTIONS_SCHEMA.names)
    for name in ("event_id", "recommendation_id"):
        optional_id = raw.get(name)
        if optional_id is not None:
            _check_id(log, name, optional_id, required=False)
    user_id, item_id = _required(raw, "user_id"), _required(raw, "item_id")
    _check_id(log, "user_id", user_id, required=True)
    _check_id(log, "item_id", item_id, required=True)
    interaction_type = _check_interaction_type(log, _required(raw, "interaction_type"))
    timestamp = _check_timestamp(log, _required(raw, "timestamp"), now=now)
    numbers: dict[str, pa.Array] = {}
    rating, revenue = raw.get("rating"), raw.get("revenue")
    numbers["rating"] = (
        _check_number(log, "rating", rating, required=False, maximum=sc.RATING_MAX)
        if rating is not None
        else pa.nulls(n, pa.float64())
    )
    numbers["revenue"] = (
        _check_number(log, "revenue", revenue, required=False, ceiling=sc.MAX_AMOUNT)
        if revenue is not None
        else pa.nulls(n, pa.float64())
    )
    position_text = raw.get("position")
    position = _check_position(log, position_text) if position_text is not None else pa.nulls(n, pa.int32())
    source = raw.get("source")
    if source is not None:
        _check_text(log, "source", source, max_length=sc.MAX_LABEL_LENGTH, required=False)
    event_id = raw.get("event_id")
    if event_id is not None:
        _check_duplicates(log, "event_id", event_id)
    full = pa.Table.from_arrays(
        [
            _optional_text(raw, "event_id"),
            user_id,
            item_id,
            interaction_type,
            timestamp,
            numbers["rating"],
            _optional_text(raw, "source"),
            position,
            numbers["revenue"],
            _optional_text(raw, "recommendation_id"),
            _constant_timestamp(now, n),
            pa.repeat(pa.scalar(upload_id, pa.string()), n),
        ],
        schema=sc.INTERACTIONS_SCHEMA,
    )
    warnings, hidden = _unknown_item_warnings(item_id, log, known_item_ids)
    return _result(raw, log, full, warnings, hidden)


def _unknown_item_warnings(
    item_id: pa.Array, log: _IssueLog, known_item_ids: frozenset[str] | None
) -> tuple[list[RowIssue], int]:
    if known_item_ids is None:
        return [], 0
    known = pc.is_in(item_id, value_set=pa.array(list(known_item_ids), pa.string()))
    unknown = np.flatnonzero(~_to_numpy_bool(known) & ~log.bad)
    listed = [
        RowIssue(
            int(log.row_numbers[index]),
            "item_id",
            f"unknown item_id {_show(_value(item_id, int(index)))}; stored, but it will be ignored "
            "by training until the item is in the catalogue",
        )
        for index in unknown[: sc.MAX_LISTED_ISSUES]
    ]
    return listed, int(unknown.size) - len(listed)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
