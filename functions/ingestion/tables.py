"""Canonical schemas and column rules for catalogue items and interactions.

The Parquet files in ``raw/{tenant}/...`` are written in exactly these schemas, so training and
analytics can read every upload alike. The CSV and JSON column lists below are the upload
contract of the walkthrough (Step 1.5/1.6 for CSV, Step 3.3 for JSON events).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import pyarrow as pa

from functions.identity import models

#: The one timestamp type of every stored table: milliseconds, UTC.
TIMESTAMP_TYPE: Final = pa.timestamp("ms", tz="UTC")

ITEMS_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("brand", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=True),
        pa.field("updated_at", TIMESTAMP_TYPE, nullable=False),
        # False: kept in the catalogue but never served; null (older catalogues, no column) = True.
        pa.field("available", pa.bool_(), nullable=True),
    ]
)

INTERACTIONS_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=True),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("interaction_type", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP_TYPE, nullable=False),
        pa.field("rating", pa.float64(), nullable=True),
        pa.field("source", pa.string(), nullable=True),
        pa.field("position", pa.int32(), nullable=True),
        pa.field("revenue", pa.float64(), nullable=True),
        pa.field("recommendation_id", pa.string(), nullable=True),
        pa.field("ingested_at", TIMESTAMP_TYPE, nullable=False),
        pa.field("upload_id", pa.string(), nullable=False),
    ]
)

# Interaction types (``contract.interactions.INTERACTION_TYPES``) are stored lower-case; uploads may
# use any case.

# --- CSV columns (header names are case-sensitive; surrounding whitespace and a BOM are ignored) ---
ITEMS_CSV_REQUIRED: Final = ("item_id", "title", "category", "price", "brand")
ITEMS_CSV_OPTIONAL: Final = ("description", "available")
INTERACTIONS_CSV_REQUIRED: Final = ("user_id", "item_id", "interaction_type", "timestamp")
INTERACTIONS_CSV_OPTIONAL: Final = (
    "rating",
    "event_id",
    "source",
    "position",
    "revenue",
    "recommendation_id",
)

# --- JSON records ---
ITEMS_JSON_KEYS: Final = ITEMS_CSV_REQUIRED + ITEMS_CSV_OPTIONAL
#: Keys an interaction event may carry inside ``context`` (or, like the CSV columns, at top level).
INTERACTION_CONTEXT_KEYS: Final = ("source", "position", "revenue", "recommendation_id")
INTERACTIONS_JSON_KEYS: Final = INTERACTIONS_CSV_REQUIRED + INTERACTIONS_CSV_OPTIONAL + ("context",)

# --- Field rules ---
#: Identifiers (item, user, event, recommendation): 1-128 characters, starting with a letter or digit,
#: then letters, digits and ``_ . : @ / -``. No whitespace or control characters, so ids survive
#: URLs, S3 keys, logs and CSV round trips unquoted.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"
MAX_ID_LENGTH: Final = 128
MAX_TITLE_LENGTH: Final = 512
#: category, brand and source
MAX_LABEL_LENGTH: Final = 128
MAX_DESCRIPTION_LENGTH: Final = 5000
RATING_MIN: Final = 0.0
RATING_MAX: Final = 5.0
#: Prices and revenues (shared with serving's price filters).
MAX_AMOUNT: Final = models.MAX_AMOUNT
#: Position of an item in a recommendation list (lists are at most a few hundred long).
MAX_POSITION: Final = 10_000
#: Interactions older than this are almost certainly a unit or parsing mistake on the shop's side.
EARLIEST_TIMESTAMP: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: Clock skew allowed for timestamps in the future.
FUTURE_TOLERANCE: Final = timedelta(days=1)

#: ``available`` values (case-insensitive; empty means available).
AVAILABLE_TRUE: Final = ("true", "1", "yes")
AVAILABLE_FALSE: Final = ("false", "0", "no")

# --- Hard caps on a CSV file (each checked in one linear pass before parsing; a file over a cap gets
# a quick 422 that names the cap, never an echo of the input) ---
#: The header line: the contract's columns need about 100 bytes.
MAX_HEADER_BYTES: Final = 4096
#: Columns in the header (the contract has at most ten).
MAX_CSV_COLUMNS: Final = len(INTERACTIONS_CSV_REQUIRED) + len(INTERACTIONS_CSV_OPTIONAL)
#: One physical line: the longest valid row (a 5,000-character description in 4-byte UTF-8 with every
#: quote doubled, plus the other fields) is under 48 KiB.
MAX_LINE_BYTES: Final = 64 * 1024
#: Lines per items file (API upload or drop folder): the catalogue is upserted as one table, so an
#: items file is held whole once validated; larger catalogues are split into several files.
MAX_CSV_LINES: Final = 1_000_000
#: Bytes per dropped items file; the API upload has its own, smaller body limit.
MAX_CSV_BYTES: Final = 256 * 1024 * 1024
#: Lines per interactions file. Interactions are validated and stored chunk by chunk, so memory no
#: longer bounds a file (≈ 0.4 GB at 1M rows, docs/benchmarks.md); the ingest function's 300 s does:
#: ≈ 46 s per 1M rows in AWS with an event id on every row (claims, feed, own work), so 4M rows take
#: ≈ 185 s, leaving room for a slower DynamoDB.
MAX_INTERACTION_CSV_LINES: Final = 4_000_000
#: Bytes per dropped interactions file: 4M lines of up to 128 bytes (a typical row is 45).
MAX_INTERACTION_CSV_BYTES: Final = 512 * 1024 * 1024

#: At most this many errors (and, separately, warnings) are listed per file; the rest are counted.
MAX_LISTED_ISSUES: Final = 1000
