"""What an interactions upload hands to serving: its rows for the per-user recent-events feed, and
the time span it covers (recorded with the upload, so training finds the newest interaction cheaply)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from contract.interactions import PURCHASE
from functions.common.dynamo import to_iso
from functions.ingestion.store.events import EventPack, RecentEvent
from functions.ingestion.store.uploads import SPAN_FIRST, SPAN_LAST


def interaction_span(table: pa.Table) -> dict[str, str]:
    """The upload record's span attributes (ISO, milliseconds) of stored rows; empty for no rows."""
    if table.num_rows == 0:
        return {}
    bounds = pc.min_max(table["timestamp"])
    return span_attributes(bounds["min"].as_py(), bounds["max"].as_py())


def span_attributes(first: datetime, last: datetime) -> dict[str, str]:
    """The upload record's span attributes of stored rows from ``first`` to ``last``."""
    return {SPAN_FIRST: _iso_ms(first), SPAN_LAST: _iso_ms(last)}


#: The columns the feed is built from.
FEED_COLUMNS = ("event_id", "user_id", "item_id", "interaction_type", "timestamp")
_POSITION = "_position"


def feed_rows(table: pa.Table, depth: int) -> pa.Table:
    """At most ``depth`` rows per user: purchases first, then the newest (later rows of the file first).

    Serving reads a user's ``depth`` newest feed entries; putting the purchases among them keeps what a
    shopper bought out of the answers even when the export has many later views.
    """
    return _top_rows(table, depth, np.arange(table.num_rows))


class FeedRows:
    """``feed_rows`` of an upload read in chunks: at most ``depth`` rows per user are kept between
    chunks (the rows of the whole file that ``feed_rows`` would keep, with the same order per user)."""

    def __init__(self, depth: int) -> None:
        self._depth = depth
        self._kept: pa.Table | None = None
        self._received = 0

    def add(self, table: pa.Table) -> None:
        """Take one chunk's stored rows."""
        n = table.num_rows
        if n == 0:
            return
        positions = pa.array(np.arange(self._received, self._received + n, dtype=np.int64))
        self._received += n
        chunk = table.select(list(FEED_COLUMNS)).append_column(_POSITION, positions)
        combined = chunk if self._kept is None else pa.concat_tables([self._kept, chunk])
        self._kept = _top_rows(combined, self._depth, combined[_POSITION].to_numpy())

    def rows(self) -> pa.Table | None:
        """The rows kept so far (``FEED_COLUMNS``); None when no row was stored."""
        return None if self._kept is None else self._kept.drop_columns([_POSITION])


def feed_slices(rows: pa.Table, users: int) -> Iterator[pa.Table]:
    """``rows`` in slices of whole users, about ``users`` each (rows of a user must be together, as
    ``feed_rows`` and ``FeedRows`` leave them)."""
    codes = pc.dictionary_encode(rows["user_id"]).combine_chunks().indices.to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(np.diff(codes)) + 1])
    cuts = [*starts[users::users].tolist(), rows.num_rows]
    start = 0
    for stop in cuts:
        if stop > start:
            yield rows.slice(start, stop - start)
        start = stop


def _top_rows(table: pa.Table, depth: int, position: npt.NDArray[np.int64]) -> pa.Table:
    n = table.num_rows
    if n == 0:
        return table
    users = pc.dictionary_encode(table["user_id"]).combine_chunks().indices.to_numpy()
    stamps = table["timestamp"].cast(pa.int64()).to_numpy()
    bought = pc.equal(table["interaction_type"], PURCHASE).to_numpy(zero_copy_only=False)
    order = np.lexsort((-position, -stamps, ~bought, users))
    sorted_users = users[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_users)) + 1])
    counts = np.diff(np.concatenate([starts, [n]]))
    rank = np.arange(n) - np.repeat(starts, counts)
    return table.take(pa.array(order[rank < depth]))


def feed_events(table: pa.Table, upload_id: str) -> list[RecentEvent]:
    """Feed entries of real-time rows: keyed by time, then the client's event id or the row's place."""
    rows = table.select(["user_id", "item_id", "interaction_type", "timestamp", "event_id"]).to_pylist()
    return [
        RecentEvent(
            user_id=row["user_id"],
            item_id=row["item_id"],
            interaction_type=row["interaction_type"],
            timestamp=row["timestamp"],
            event_key=f"{to_iso(row['timestamp'])}#{row['event_id'] or f'{upload_id}:{position}'}",
        )
        for position, row in enumerate(rows)
    ]


def feed_packs(table: pa.Table) -> list[EventPack]:
    """A bulk upload's rows as one feed entry per user (``RecentEventsRepository.put_packs``).

    Encoded column-wise: building a Python object per row cost seconds for a 100k-row file.
    """
    if table.num_rows == 0:
        return []
    stamps = _iso_seconds(table["timestamp"])
    cells = pc.binary_join_element_wise(
        '["', _json_text(table["item_id"]), '","', table["interaction_type"], '","', stamps, '"]', ""
    )
    grouped = (
        pa.table({"user_id": table["user_id"], "cell": cells, "stamp": stamps})
        .group_by("user_id", use_threads=False)
        .aggregate([("cell", "list"), ("stamp", "max")])
    )
    events = pc.binary_join_element_wise("[", pc.binary_join(grouped["cell_list"], ","), "]", "")
    return [
        EventPack(user_id, newest, encoded)
        for user_id, newest, encoded in zip(
            grouped["user_id"].to_pylist(), grouped["stamp_max"].to_pylist(), events.to_pylist(), strict=True
        )
    ]


def _iso_seconds(stamps: pa.ChunkedArray) -> pa.ChunkedArray:
    """``to_iso``'s text of UTC timestamps, column-wise (a zoned ``strftime`` is ten times slower)."""
    seconds = pc.divide(stamps.cast(pa.int64()), 1000).cast(pa.timestamp("s"))  # stored as UTC milliseconds
    return pc.binary_join_element_wise(pc.replace_substring(seconds.cast(pa.string()), " ", "T"), "Z", "")


def _json_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strings escaped for a JSON string literal (ids allow neither, but the format must not rely on it)."""
    escaped = pc.replace_substring(values, "\\", "\\\\")
    return pc.replace_substring(escaped, '"', '\\"')


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
