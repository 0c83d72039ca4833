"""What an interactions upload hands to serving's per-user feed, and the span its record keeps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from functions.ingestion.feed import (
    FeedRows,
    feed_events,
    feed_packs,
    feed_rows,
    feed_slices,
    interaction_span,
)
from functions.ingestion.tables import TIMESTAMP_TYPE

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _table(rows: Sequence[tuple[str, str, str, int, str | None]]) -> pa.Table:
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "interaction_type": [r[2] for r in rows],
            "timestamp": pa.array([T0 + timedelta(hours=r[3]) for r in rows], TIMESTAMP_TYPE),
            "event_id": pa.array([r[4] for r in rows], pa.string()),
        }
    )


def test_each_user_keeps_only_their_newest_rows_without_purchases() -> None:
    rows = [("a", f"i{h}", "view", h, None) for h in (5, 1, 9, 3)] + [("b", "i0", "purchase", 2, None)]

    kept = feed_rows(_table(rows), 2).to_pylist()

    assert [(r["user_id"], r["item_id"]) for r in kept] == [("a", "i9"), ("a", "i5"), ("b", "i0")]


def test_purchases_come_before_newer_views() -> None:
    rows = [("a", "bought", "purchase", 1, None)] + [("a", f"v{h}", "view", 10 + h, None) for h in range(3)]

    kept = feed_rows(_table(rows), 2)["item_id"].to_pylist()

    assert kept == ["bought", "v2"]


def test_equal_times_keep_the_later_row_of_the_file() -> None:
    rows = [("a", "first", "view", 1, None), ("a", "second", "view", 1, None)]

    assert feed_rows(_table(rows), 1)["item_id"].to_pylist() == ["second"]


def test_feed_keys_start_with_the_time_and_end_with_the_event_id_or_the_row() -> None:
    rows = [("a", "i1", "purchase", 0, "evt-1"), ("a", "i2", "view", 1, None)]

    events = feed_events(_table(rows), "upload_x")

    assert [e.event_key for e in events] == ["2025-01-01T00:00:00Z#evt-1", "2025-01-01T01:00:00Z#upload_x:1"]
    assert (events[0].item_id, events[0].interaction_type, events[0].timestamp) == ("i1", "purchase", T0)


def test_a_bulk_upload_packs_its_rows_by_user_as_json() -> None:
    rows = [
        ("a", "i1", "purchase", 0, None),
        ("b", 'odd"\\id', "view", 1, None),
        ("a", "i3", "view", 2, None),
    ]

    packs = {pack.user_id: pack for pack in feed_packs(_table(rows))}

    assert json.loads(packs["a"].events_json) == [
        ["i1", "purchase", "2025-01-01T00:00:00Z"],
        ["i3", "view", "2025-01-01T02:00:00Z"],
    ]
    assert packs["a"].newest == "2025-01-01T02:00:00Z"
    assert json.loads(packs["b"].events_json) == [['odd"\\id', "view", "2025-01-01T01:00:00Z"]]
    assert feed_packs(_table([])) == []


def test_the_span_is_the_oldest_and_newest_row_to_the_millisecond() -> None:
    rows = [("a", "i1", "view", 30, None), ("b", "i2", "view", -2, None)]

    assert interaction_span(_table(rows)) == {
        "first_timestamp": "2024-12-31T22:00:00.000Z",
        "last_timestamp": "2025-01-02T06:00:00.000Z",
    }
    assert interaction_span(_table([])) == {}


def test_rows_read_in_chunks_keep_what_the_whole_file_keeps() -> None:
    # Given rows of three users spread over three chunks, with ties in time broken by file order
    rows = [(f"u{n % 3}", f"i{n}", "purchase" if n % 7 == 0 else "view", n % 4, None) for n in range(60)]
    whole = feed_rows(_table(rows), 5)
    kept = FeedRows(5)
    for start in range(0, 60, 20):
        kept.add(_table(rows[start : start + 20]))
    chunked = kept.rows()
    assert chunked is not None

    def per_user(table: pa.Table) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for user, item in zip(table["user_id"].to_pylist(), table["item_id"].to_pylist(), strict=True):
            out.setdefault(user, []).append(item)
        return out

    assert per_user(chunked) == per_user(whole)


def test_feed_slices_are_whole_users_and_cover_every_row() -> None:
    rows = feed_rows(_table([(f"u{n % 7}", f"i{n}", "view", n, None) for n in range(50)]), 3)
    slices = list(feed_slices(rows, 2))
    assert [len(set(part["user_id"].to_pylist())) for part in slices] == [2, 2, 2, 1]
    assert pa.concat_tables(slices).equals(rows)
    users = [set(part["user_id"].to_pylist()) for part in slices]
    assert all(not (a & b) for n, a in enumerate(users) for b in users[n + 1 :])
