"""The chunked CSV reader: where it cuts, and what it refuses before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.common.errors import FileRejectedError
from functions.ingestion import tables
from functions.ingestion.validation import (
    merge_results,
    stream_interactions_csv,
    stream_items_csv,
    validate_items_csv,
)
from functions.ingestion.validation.chunks import plan_csv
from functions.ingestion.validation.decoding import BLOCK_BYTES

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ITEMS_HEADER = "item_id,title,category,price,brand,description"
EVENTS_HEADER = "event_id,user_id,item_id,interaction_type,timestamp"


def _blocks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def _chunks(data: bytes, chunk_bytes: int, block: int = 3) -> list[bytes]:
    """The chunks the planner cuts ``data``'s body into."""
    plan = plan_csv(
        lambda: _blocks(data, block),
        tables.ITEMS_CSV_REQUIRED,
        tables.ITEMS_CSV_OPTIONAL,
        max_lines=tables.MAX_CSV_LINES,
        chunk_bytes=chunk_bytes,
    )
    body = data[plan.body_start :]
    pieces, start = [], 0
    for length in plan.chunk_lengths:
        pieces.append(body[start : start + length])
        start += length
    assert start == len(body)
    return pieces


def test_a_multi_line_description_after_an_inch_mark_is_never_cut() -> None:
    # Given a title with a literal quote (not at the start of its field) and a description over two
    # lines: the quote count is even at the end of the first line, yet that break is inside a value.
    rows = [f'a{n},TV 55" screen,C,1,B,"first line\nsecond line"' for n in range(5)]
    data = "\n".join([ITEMS_HEADER, *rows, ""]).encode()
    # When it is cut as small as the planner allows
    chunks = _chunks(data, chunk_bytes=1)
    # Then every chunk is whole rows, and each row reads as it does in the whole file
    assert [chunk.count(b"\n") for chunk in chunks] == [2] * 5
    whole = validate_items_csv(data, now=NOW)
    assert whole.accepted == 5
    assert whole.table.column("description").to_pylist() == ["first line\nsecond line"] * 5


def test_a_doubled_quote_split_between_read_blocks_stays_a_quote() -> None:
    data = (ITEMS_HEADER + '\na1,"say ""hi""\nthere",C,1,B,\na2,T,C,1,B,\n').encode()
    for block in range(1, 12):
        chunks = _chunks(data, chunk_bytes=1, block=block)
        assert chunks == [b'a1,"say ""hi""\nthere",C,1,B,\n', b"a2,T,C,1,B,\n"]


def test_crlf_files_are_cut_after_the_whole_line_break() -> None:
    data = (ITEMS_HEADER + "\r\na1,T,C,1,B,\r\na2,T,C,1,B,\r\n").encode()
    assert _chunks(data, chunk_bytes=1, block=1) == [b"a1,T,C,1,B,\r\n", b"a2,T,C,1,B,\r\n"]


def test_an_event_id_repeated_in_a_later_chunk_names_the_row_that_came_first() -> None:
    rows = [f"e{n % 3},u1,i1,view,2025-05-01T10:00:00Z" for n in range(6)]
    data = "\n".join([EVENTS_HEADER, *rows]).encode()
    chunks = list(
        stream_interactions_csv(lambda: [data], upload_id="u", now=NOW, known_item_ids=None, chunk_bytes=1)
    )
    assert len(chunks) == 6
    result = merge_results(chunks)
    assert result.accepted == 3
    assert [(issue.row, issue.message) for issue in result.errors] == [
        (4, "duplicate event_id 'e0', first seen at row 1"),
        (5, "duplicate event_id 'e1', first seen at row 2"),
        (6, "duplicate event_id 'e2', first seen at row 3"),
    ]


def test_a_quote_never_closed_over_a_reader_block_refuses_the_file_before_any_chunk() -> None:
    # Given a quote opened on the first row and never closed, with more than a reader block after it
    line = b"a2,T,C,1,B,\n"
    data = ITEMS_HEADER.encode() + b'\na1,"T,C,1,B,\n' + line * ((BLOCK_BYTES + (1 << 17)) // len(line))
    # When the file is planned in small chunks, then it is refused as a whole, before any chunk is read
    # (read whole, pyarrow refused it too: a row longer than its block cannot be read)
    with pytest.raises(FileRejectedError, match="no row ends within"):
        stream_items_csv(lambda: _blocks(data, 1 << 16), now=NOW, chunk_bytes=1 << 16)


def test_a_file_over_the_line_cap_is_refused_before_any_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "MAX_CSV_LINES", 10)
    data = "\n".join([ITEMS_HEADER, *(f"a{n},T,C,1,B," for n in range(11)), ""]).encode()
    with pytest.raises(FileRejectedError, match="more than 10 lines"):
        stream_items_csv(lambda: _blocks(data, 5), now=NOW, chunk_bytes=8)


def test_interactions_files_may_have_more_lines_than_items_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # Interactions are stored chunk by chunk, so their cap is the function's time, not its memory.
    monkeypatch.setattr(tables, "MAX_CSV_LINES", 10)
    monkeypatch.setattr(tables, "MAX_INTERACTION_CSV_LINES", 20)
    rows = [f",u{n},i1,view,2025-05-01T10:00:00Z" for n in range(20)]
    data = "\n".join([EVENTS_HEADER, *rows, ""]).encode()
    result = merge_results(
        stream_interactions_csv(lambda: [data], upload_id="u", now=NOW, known_item_ids=None, chunk_bytes=64)
    )
    assert result.accepted == 20
    with pytest.raises(FileRejectedError, match="more than 20 lines"):
        stream_interactions_csv(
            lambda: [data + rows[0].encode() + b"\n"], upload_id="u", now=NOW, known_item_ids=None
        )


def test_a_source_that_shrinks_between_the_passes_is_refused() -> None:
    data = "\n".join([ITEMS_HEADER, *(f"a{n},T,C,1,B," for n in range(20))]).encode()
    reads = iter([[data], [data[: len(data) // 2]]])
    chunks = stream_items_csv(lambda: next(reads), now=NOW, chunk_bytes=32)
    with pytest.raises(FileRejectedError, match="changed while it was being read"):
        list(chunks)
