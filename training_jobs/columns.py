"""The snapshot's Arrow columns as numpy arrays (shared by data preparation and the gate)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]


def with_ids(interactions: pa.Table) -> pa.Table:
    """The interactions that name both a user and an item."""
    return interactions.filter(
        pc.and_(pc.is_valid(interactions["user_id"]), pc.is_valid(interactions["item_id"]))
    )


def id_strings(table: pa.Table, column: str) -> StrArray:
    """A column of ids (no nulls) as strings."""
    return np.asarray(pc.cast(table[column], pa.string()).to_pylist(), dtype=str)


def millis(table: pa.Table) -> IntArray:
    """The ``timestamp`` column as int64 milliseconds (a missing timestamp reads 0)."""
    stamps = pc.cast(pc.cast(table["timestamp"], pa.timestamp("ms")), pa.int64())
    return np.asarray(pc.fill_null(stamps, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def iso_ms(value: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC."""
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
