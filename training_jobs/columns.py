"""The snapshot's Arrow columns as numpy arrays (shared by data preparation and the gate)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]


def sample_sorted(values: IntArray, at_most: int | None, seed: int) -> IntArray:
    """``values`` when there are at most ``at_most`` (None: no bound), else a seeded uniform sample of
    ``at_most`` of them, sorted: the same users for every contender a selection or the gate compares."""
    if at_most is None or values.size <= at_most:
        return values
    chosen: IntArray = np.sort(np.random.default_rng(seed).choice(values, size=at_most, replace=False))
    return chosen


def with_ids(interactions: pa.Table) -> pa.Table:
    """The interactions that name both a user and an item (the table itself, not a copy, when all do)."""
    if interactions["user_id"].null_count == 0 and interactions["item_id"].null_count == 0:
        return interactions
    return interactions.filter(
        pc.and_(pc.is_valid(interactions["user_id"]), pc.is_valid(interactions["item_id"]))
    )


def sorted_distinct(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The distinct non-null values of a column as strings, in sorted (code point) order."""
    distinct = pc.unique(pc.cast(column, pa.string())).drop_null()
    return distinct.take(pc.sort_indices(distinct))


def codes_in(column: pa.ChunkedArray | pa.Array, values: pa.Array) -> npt.NDArray[np.int32]:
    """Each row's position in ``values`` as int32 (-1 for a null or a value not there).

    One hash pass in Arrow: no Python object or fixed-width string is made per row.
    """
    codes = pc.fill_null(pc.index_in(pc.cast(column, pa.string()), value_set=values), -1)
    if isinstance(codes, pa.ChunkedArray):
        codes = codes.combine_chunks() if codes.num_chunks != 1 else codes.chunk(0)
    return np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int32)


def compact_codes(
    codes: npt.NDArray[np.int32], values: pa.Array
) -> tuple[npt.NDArray[np.int32], IntArray, StrArray]:
    """Renumber non-negative ``codes`` to the values that occur, order kept.

    Returns the new codes, the old code of each new one and the values that occur (per value, not per row).
    """
    present = np.bincount(codes, minlength=len(values)) > 0
    renumber = (np.cumsum(present) - 1).astype(np.int32)
    old = np.flatnonzero(present).astype(np.int64)
    used = np.asarray(values.take(pa.array(old)).to_numpy(zero_copy_only=False), dtype=str)
    return renumber[codes], old, used


def millis(table: pa.Table) -> IntArray:
    """The ``timestamp`` column as int64 milliseconds (a missing timestamp reads 0)."""
    stamps = pc.cast(pc.cast(table["timestamp"], pa.timestamp("ms")), pa.int64())
    return np.asarray(pc.fill_null(stamps, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def iso_ms(value: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC."""
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
