"""CSV bytes to a text table: BOM, UTF-8 and NUL handling, the header, caps, and physical row numbers."""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from functions.common.errors import FileRejectedError
from functions.ingestion import tables as sc
from functions.ingestion.validation.issues import BoolArray, IntArray, RowIssue, clip, show, to_numpy_bool

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
class RawTable:
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
        """The column, or None when the upload does not have it."""
        return self.columns.get(name)


#: pyarrow's read block: a row (a quoted value with its line breaks) longer than this cannot be read.
BLOCK_BYTES = 1 << 22


def read_body(
    body: bytes,
    names: Sequence[str],
    *,
    multiline: Sequence[str],
    first_row: int,
    nul_in_source: bool,
    bad_bytes_in_source: bool,
    unclosed_at_end: bool,
) -> RawTable:
    """Every column of a chunk of whole rows as text, its rows numbered from ``first_row``.

    ``nul_in_source`` and ``bad_bytes_in_source`` say whether the file (not only this chunk) holds a
    NUL byte or bytes that are not UTF-8 (rows with a NUL are then rejected as such), and
    ``unclosed_at_end`` whether this is the file's last chunk and a quote is still open at its end.
    Raises :class:`FileRejectedError` when pyarrow cannot read the chunk at all.
    """
    has_bad_bytes = bad_bytes_in_source
    if has_bad_bytes and not body.isascii() and not is_utf8(body):
        body = body.decode("utf-8", errors=_NUL_ERRORS).encode("utf-8")
    ragged: list[pa_csv.InvalidRow] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(body),
            read_options=pa_csv.ReadOptions(
                column_names=list(names), use_threads=False, block_size=BLOCK_BYTES
            ),
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
        raise FileRejectedError(f"the file cannot be parsed as CSV: {clip(str(exc), 200)}") from exc
    num_rows = table.num_rows
    untrimmed = {name: table.column(name).combine_chunks() for name in names}
    del table
    columns = {name: pc.ascii_trim_whitespace(column) for name, column in untrimmed.items()}
    row_numbers, outside = _csv_row_numbers(num_rows, ragged, len(names))
    raw = RawTable(
        columns,
        num_rows,
        row_numbers,
        rows_received=num_rows + len(ragged),
        outside=outside,
    )
    if body.count(b'"'):
        _number_physical_rows(
            raw,
            untrimmed,
            ragged,
            unclosed_at_end=unclosed_at_end,
            multiline=frozenset(multiline),
            offset=first_row - 1,
        )
    if has_bad_bytes:
        _flag_nul_rows(raw, nul_in_source=nul_in_source)
    if first_row != 1:
        shift = first_row - 1
        raw.row_numbers = raw.row_numbers + shift
        raw.outside = [RowIssue(issue.row + shift, issue.field, issue.message) for issue in raw.outside]
    return raw


def too_many_lines_message(max_lines: int) -> str:
    """Why a file over the line cap is refused."""
    return f"the file has more than {max_lines:,} lines; split it into several files"


def too_long_message(line: int) -> str:
    """Why a file with a line longer than any valid row is refused."""
    return (
        f"data line {line} is longer than {sc.MAX_LINE_BYTES:,} bytes, more than any valid row; "
        "is this the right file?"
    )


# A line break that starts a non-blank line (blank lines are not rows); the last break of a value is
# followed by at least the closing quote, so it always starts a non-blank line.
_LINE_START = r"(\r\n|\n|\r)[ \t]*([^\s]|$)"
_LINE_START_RE = re.compile(_LINE_START)
_ANY_BREAK = r"[\r\n]"


def _number_physical_rows(
    raw: RawTable,
    untrimmed: Mapping[str, pa.Array],
    ragged: Sequence[pa_csv.InvalidRow],
    *,
    unclosed_at_end: bool,
    multiline: frozenset[str],
    offset: int,
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
            broken[raw.row_numbers] |= to_numpy_bool(pc.match_substring_regex(column, _ANY_BREAK))
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
            RowIssue(
                opened + k, "_row", f"part of row {opened + offset}: its unbalanced quote swallowed this line"
            )
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


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_header(data: bytes, required: Sequence[str], optional: Sequence[str]) -> tuple[list[str], int]:
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
    return ", ".join(show(name, 40) for name in names)


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


def _flag_nul_rows(raw: RawTable, *, nul_in_source: bool) -> None:
    message = "not valid UTF-8" + (" or contains a NUL byte" if nul_in_source else "")
    flagged = np.zeros(raw.num_rows, dtype=np.bool_)
    for column in raw.columns.values():
        flagged |= to_numpy_bool(pc.match_substring(column, _NUL))
    raw.pre_issues.extend((int(i), "_row", message) for i in np.flatnonzero(flagged))
