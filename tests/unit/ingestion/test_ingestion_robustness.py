"""Arbitrary damage never crashes validation, and the counts always add up.

Seeded random mutations stand in for property-based testing (hypothesis is not a dependency):
every case either raises :class:`FileRejectedError` or returns a result whose invariants hold
(the ``validate`` fixture checks them).
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest

from functions.ingestion.tables import ITEMS_SCHEMA
from functions.ingestion.validation import FileRejectedError, ValidationResult

from .conftest import Validate

_SPLICES = [
    b",",
    b"\n",
    b'"',
    b"\r\n",
    b"\xff",
    b"\xc3",
    b"\x00",
    b" ",
    b"-",
    b"nan",
    b"\xef\xbb\xbf",
    b"9" * 40,
]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        position = rng.randrange(len(out) + 1)
        action = rng.random()
        if action < 0.4:
            out[position:position] = rng.choice(_SPLICES)
        elif action < 0.7 and out:
            del out[position : position + rng.randint(1, 8)]
        else:
            out[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(out)


@pytest.mark.parametrize("seed", range(150))
def test_damaged_items_csv_never_crashes(validate: Validate, fixture_bytes, seed: int) -> None:
    data = _mutate(fixture_bytes("items_mixed.csv"), random.Random(seed))

    try:
        validate.items_csv(data)
    except FileRejectedError as exc:
        assert exc.message


@pytest.mark.parametrize("seed", range(150))
def test_damaged_interactions_csv_never_crashes(validate: Validate, fixture_bytes, seed: int) -> None:
    data = _mutate(fixture_bytes("interactions_mixed.csv"), random.Random(1000 + seed))

    try:
        validate.interactions_csv(data, known_item_ids=frozenset({"item_0001"}))
    except FileRejectedError as exc:
        assert exc.message


_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    10**30,
    "",
    " ",
    "x",
    "view",
    "2025-01-01T00:00:00Z",
    "\ud800",
    [],
    {},
    {"position": 1},
    "a" * 200,
]
_KEYS = [
    "user_id",
    "item_id",
    "interaction_type",
    "timestamp",
    "rating",
    "context",
    "event_id",
    "other",
    "price",
]


@pytest.mark.parametrize("seed", range(100))
def test_random_json_records_never_crash(validate: Validate, seed: int) -> None:
    rng = random.Random(seed)
    records: list[Any] = [
        {rng.choice(_KEYS): rng.choice(_VALUES) for _ in range(rng.randint(0, 6))}
        for _ in range(rng.randint(1, 8))
    ]
    records.append(rng.choice(_VALUES))

    validate.interactions_records(records)
    validate.items_records(records)


def test_inconsistent_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent counts"):
        ValidationResult(
            table=ITEMS_SCHEMA.empty_table(), rows_received=2, rejected=1, errors=[], warnings=[]
        )
    assert ValidationResult(pa.table({}), 0, 0, [], []).accepted == 0
