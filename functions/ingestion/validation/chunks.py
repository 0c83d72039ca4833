"""A CSV upload cut into chunks of whole rows, so that the file's size never sets the memory it takes.

Two passes over the bytes; the source is read twice (an S3 object is fetched twice, an API body is
already in memory). The first pass is cheap and holds one chunk at a time: it reads the header, applies
the file's caps (lines, line length, no data rows) and finds where to cut, so a file over a cap is
refused before anything is stored, exactly as when files were read whole. The second pass hands the
chunks, one at a time, to the reader and the rules.

A chunk ends at a line break that the CSV reader would see outside any quoted value: the quote state
is followed the way pyarrow's reader follows it (a quote opens a value only at the start of a field; a
doubled quote inside a value is a quote), so a multi-line description is never cut, and each chunk
parses exactly as the same rows did inside the whole file. A quoted value that runs past the reader's
block (4 MiB, far beyond any valid row) refuses the file, as the whole-file reader refused it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from functions.common.errors import FileRejectedError
from functions.ingestion import tables as sc
from functions.ingestion.validation.decoding import (
    BLOCK_BYTES,
    RawTable,
    is_utf8,
    read_body,
    read_header,
    too_long_message,
    too_many_lines_message,
)

#: Something that reads an upload from its first byte, in blocks, each time it is called.
ByteSource = Callable[[], Iterable[bytes]]

#: Bytes per chunk: well above the API's body limit (an API upload is always one chunk) and small
#: enough that a chunk's text columns and checks take a few hundred MB at most.
CHUNK_BYTES: Final = 8 * 1024 * 1024

_QUOTE, _COMMA, _LF, _CR = ord('"'), ord(","), ord("\n"), ord("\r")
_NON_SPACE = re.compile(rb"\S")
_BOM = b"\xef\xbb\xbf"
_LEADING_BREAKS = re.compile(rb"[\r\n]*")
_LINE_BREAK = re.compile(rb"\r\n|\n|\r")


@dataclass(frozen=True)
class CsvPlan:
    """What the first pass found: the columns, where the body starts and how it is cut."""

    names: list[str]
    body_start: int
    chunk_lengths: list[int]
    nul_in_source: bool
    #: Some bytes of the file are not UTF-8 (each chunk is then read with them marked).
    bad_bytes_in_source: bool
    #: A quote is still open at the end of the file (the last row swallowed the lines after it).
    unclosed_at_end: bool


def plan_csv(
    source: ByteSource,
    required: Sequence[str],
    optional: Sequence[str],
    *,
    max_lines: int,
    chunk_bytes: int | None = None,
) -> CsvPlan:
    """Read the upload once: header, caps (at most ``max_lines`` data lines) and cut points (chunks of
    about ``chunk_bytes``, by default :data:`CHUNK_BYTES`); raises :class:`FileRejectedError`."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    blocks = iter(source())
    head = bytearray()
    exhausted = True
    for block in blocks:
        head += block
        if _header_complete(head):
            exhausted = False
            break
    names, body_start = read_header(bytes(head), required, optional)
    scan = _BodyScan(max_lines)
    buffer = bytearray(head[body_start:])
    del head
    for block in () if exhausted else blocks:
        buffer += block
        while len(buffer) >= chunk_bytes:
            cut = _cut(buffer, chunk_bytes, at_end=False)
            if cut is None:
                break
            scan.add(bytes(buffer[:cut]))
            del buffer[:cut]
    while len(buffer) > chunk_bytes:
        cut = _cut(buffer, chunk_bytes, at_end=True)
        if cut is None or cut >= len(buffer):
            break
        scan.add(bytes(buffer[:cut]))
        del buffer[:cut]
    if buffer:
        scan.add(bytes(buffer), unclosed=_open_at_end(buffer))
    return scan.finish(names, body_start)


def read_chunks(source: ByteSource, plan: CsvPlan, multiline: Sequence[str] = ()) -> Iterator[RawTable]:
    """The second pass: each chunk as a text table, rows numbered as in the whole file."""
    first_row = 1
    count = len(plan.chunk_lengths)
    for number, body in enumerate(_slices(source, plan.body_start, plan.chunk_lengths)):
        raw = read_body(
            body,
            plan.names,
            multiline=multiline,
            first_row=first_row,
            nul_in_source=plan.nul_in_source,
            bad_bytes_in_source=plan.bad_bytes_in_source,
            unclosed_at_end=plan.unclosed_at_end and number == count - 1,
        )
        first_row += raw.rows_received
        yield raw


def bytes_source(data: bytes) -> ByteSource:
    """An upload already in memory (the API's body) as a source."""
    return lambda: (data,)


def _header_complete(head: bytearray) -> bool:
    """Whether ``head`` holds the whole header line (or more than a header may take)."""
    start = len(_BOM) if head.startswith(_BOM) else 0
    if _NON_SPACE.search(head, start) is None:
        return False
    leading = _LEADING_BREAKS.match(head, start)
    start = leading.end() if leading else start
    limit = start + sc.MAX_HEADER_BYTES + 2
    match = _LINE_BREAK.search(head, start, limit)
    if match is not None:
        return match.end() < len(head)  # a final "\r" may be half of "\r\n"
    return len(head) > limit


def _quoted_spans(view: np.ndarray, *, at_end: bool) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every quoted value, read as pyarrow reads them; an open one ends at len(view).

    Python runs once per quote character, never per byte; files without quotes cost one comparison.
    """
    quotes = np.flatnonzero(view == _QUOTE)
    if quotes.size == 0:
        return quotes, quotes
    at_start = np.ones(quotes.size, dtype=np.bool_)
    inner = quotes > 0
    before = view[quotes[inner] - 1]
    at_start[inner] = (before == _COMMA) | (before == _LF) | (before == _CR)
    positions = quotes.tolist()
    starts = at_start.tolist()
    opens: list[int] = []
    closes: list[int] = []
    inside = False
    i, n, size = 0, len(positions), len(view)
    while i < n:
        position = positions[i]
        if not inside:
            if starts[i]:
                opens.append(position)
                inside = True
            i += 1
        elif i + 1 < n and positions[i + 1] == position + 1:
            i += 2  # a doubled quote inside a value
        elif position == size - 1 and not at_end:
            break  # may be the first of a doubled quote: undecided until more bytes come
        else:
            closes.append(position)
            inside = False
            i += 1
    if inside:
        closes.append(size)
    return np.array(opens, dtype=np.int64), np.array(closes, dtype=np.int64)


def _safe_breaks(buffer: bytearray, at_end: bool) -> np.ndarray:
    """Offsets just after each line break that lies outside every quoted value."""
    view = np.frombuffer(buffer, dtype=np.uint8)
    breaks = np.flatnonzero((view == _LF) | (view == _CR))
    if breaks.size == 0:
        return breaks
    follows = np.append(view[1:], 0)[breaks]
    keep = ~((view[breaks] == _CR) & (follows == _LF))  # cut after the "\n" of "\r\n"
    if not at_end:
        keep &= breaks < view.size - 1  # a final "\r" may be half of "\r\n"
    breaks = breaks[keep]
    opens, closes = _quoted_spans(view, at_end=at_end)
    if opens.size:
        span = np.searchsorted(opens, breaks, side="right") - 1
        inside = (span >= 0) & (breaks < closes[np.maximum(span, 0)])
        breaks = breaks[~inside]
    cuts: np.ndarray = breaks + 1
    return cuts


def _cut(buffer: bytearray, chunk_bytes: int, *, at_end: bool) -> int | None:
    """Where the next chunk ends: the last safe break within ``chunk_bytes``, else the first after it."""
    cuts = _safe_breaks(buffer, at_end)
    if cuts.size == 0:
        _refuse_runaway(buffer, chunk_bytes)
        return None
    within = cuts[cuts <= chunk_bytes]
    return int(within[-1]) if within.size else int(cuts[0])


def _refuse_runaway(buffer: bytearray, chunk_bytes: int) -> None:
    """No row ends within far more bytes than any valid row takes: an unbalanced quote, or no CSV."""
    if len(buffer) > chunk_bytes + BLOCK_BYTES:
        raise FileRejectedError(
            f"the file cannot be parsed as CSV: no row ends within {BLOCK_BYTES:,} bytes "
            "(a quote that is never closed?)"
        )


def _open_at_end(buffer: bytearray) -> bool:
    """Whether a quoted value is still open at the end of the file (the last of ``buffer``)."""
    opens, closes = _quoted_spans(np.frombuffer(buffer, dtype=np.uint8), at_end=True)
    return bool(opens.size) and int(closes[-1]) == len(buffer)


class _BodyScan:
    """The caps, checked chunk by chunk in the order the whole-file reader checked them."""

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.lengths: list[int] = []
        self.line_feeds = 0
        self.returns = 0
        self.has_data = False
        self.nul = False
        self.bad_bytes = False
        self.unclosed = False
        self.longest = -1
        self.longest_line = 0

    def add(self, data: bytes, *, unclosed: bool = False) -> None:
        view = np.frombuffer(data, dtype=np.uint8)
        self.has_data = self.has_data or _NON_SPACE.search(data) is not None
        self.nul = self.nul or b"\x00" in data
        self.bad_bytes = self.bad_bytes or not (data.isascii() or is_utf8(data))
        self.unclosed = unclosed
        breaks = np.flatnonzero((view == _LF) | (view == _CR))
        lengths = np.diff(breaks, prepend=-1, append=view.size) - 1
        longest = int(np.argmax(lengths))
        if lengths[longest] > self.longest:
            self.longest = int(lengths[longest])
            before = view[: breaks[longest - 1] + 1 if longest else 0]
            self.longest_line = self.line_feeds + int(np.count_nonzero(before == _LF)) + 1
        self.line_feeds += data.count(b"\n")
        self.returns += data.count(b"\r")
        self.lengths.append(len(data))
        if self.has_data and max(self.line_feeds, self.returns) > self.max_lines:
            raise FileRejectedError(too_many_lines_message(self.max_lines))

    def finish(self, names: list[str], body_start: int) -> CsvPlan:
        if not self.has_data:
            raise FileRejectedError("the file has a header but no data rows")
        if max(self.line_feeds, self.returns) > self.max_lines:
            raise FileRejectedError(too_many_lines_message(self.max_lines))
        if self.longest > sc.MAX_LINE_BYTES:
            raise FileRejectedError(too_long_message(self.longest_line))
        return CsvPlan(names, body_start, self.lengths, self.nul, self.bad_bytes, self.unclosed)


def _slices(source: ByteSource, skip: int, lengths: Sequence[int]) -> Iterator[bytes]:
    """The source's bytes after ``skip``, cut to ``lengths``."""
    buffer = bytearray()
    wanted = iter(lengths)
    size = next(wanted, None)
    for block in source():
        if skip:
            dropped = min(skip, len(block))
            block = block[dropped:]
            skip -= dropped
        buffer += block
        while size is not None and len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
            size = next(wanted, None)
    if size is not None:
        raise FileRejectedError("the file changed while it was being read")
