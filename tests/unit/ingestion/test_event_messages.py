"""The events message: rows survive the trip exactly, and a batch's id depends only on its requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from functions.common.sqs import MAX_MESSAGE_BYTES
from functions.ingestion.event_messages import BATCH_PREFIX, EventMessage, batch_id
from functions.ingestion.tables import INTERACTIONS_SCHEMA

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _rows(n: int) -> pa.Table:
    return pa.table(
        {
            "event_id": [f"e{i}" if i % 2 else None for i in range(n)],
            "user_id": [f"user_{i % 7}" for i in range(n)],
            "item_id": [f"item_{i % 13}" for i in range(n)],
            "interaction_type": ["view"] * n,
            "timestamp": pa.array([NOW] * n, pa.timestamp("ms", tz="UTC")),
            "rating": [None] * n,
            "source": ["recommendation"] * n,
            "position": pa.array([i % 10 for i in range(n)], pa.int32()),
            "revenue": [1.5] * n,
            "recommendation_id": [None] * n,
            "ingested_at": pa.array([NOW] * n, pa.timestamp("ms", tz="UTC")),
            "upload_id": ["upload_0123456789ab"] * n,
        },
        schema=INTERACTIONS_SCHEMA,
    )


def test_rows_come_back_equal_in_the_stored_schema() -> None:
    message = EventMessage.of_rows("t1", "upload_0123456789ab", NOW, _rows(50))

    again = EventMessage.model_validate_json(message.model_dump_json())

    assert again.table().equals(_rows(50))
    assert again.table().schema == INTERACTIONS_SCHEMA


def test_a_large_request_of_real_time_events_fits_one_message() -> None:
    # A thousand events of one request: well inside SQS's limit (larger requests are stored directly)
    message = EventMessage.of_rows("t1", "upload_0123456789ab", NOW, _rows(1000))

    assert len(message.model_dump_json()) < MAX_MESSAGE_BYTES // 4


def test_a_batch_id_depends_on_its_requests_only() -> None:
    ids = ["upload_000000000001", "upload_000000000002"]

    assert batch_id(ids) == batch_id(reversed(ids)) == batch_id([*ids, ids[0]])
    assert batch_id(ids) != batch_id(ids[:1])
    assert batch_id(ids).startswith(BATCH_PREFIX) and len(batch_id(ids)) == len(BATCH_PREFIX) + 24
