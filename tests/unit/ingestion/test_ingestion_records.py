"""JSON records (walkthrough Step 3.3): context flattening, defaults, wrong types, unknown keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.ingestion.validation import FileRejectedError, RowIssue

from .conftest import NOW, Validate

CLICK: dict[str, Any] = {"user_id": "user_0001", "item_id": "item_2345", "interaction_type": "click"}
ITEM: dict[str, Any] = {"item_id": "a1", "title": "T", "category": "C", "price": 1.5, "brand": "B"}


def test_step_3_3_events_are_flattened_and_timestamped_now(validate: Validate, fixture_bytes) -> None:
    events = json.loads(fixture_bytes("events_step33.json"))

    result = validate.interactions_records(
        events, upload_id="evt-upload", known_item_ids=frozenset({"item_2345"})
    )

    assert (result.rows_received, result.accepted, result.rejected) == (2, 2, 0)
    assert result.errors == [] and result.warnings == []
    assert result.table.to_pylist() == [
        {
            "event_id": None,
            "user_id": "user_0001",
            "item_id": "item_2345",
            "interaction_type": "click",
            "timestamp": NOW,
            "rating": None,
            "source": "recommendations",
            "position": 1,
            "revenue": None,
            "recommendation_id": None,
            "ingested_at": NOW,
            "upload_id": "evt-upload",
        },
        {
            "event_id": None,
            "user_id": "user_0001",
            "item_id": "item_2345",
            "interaction_type": "purchase",
            "timestamp": NOW,
            "rating": None,
            "source": "recommendations",
            "position": None,
            "revenue": 399.99,
            "recommendation_id": None,
            "ingested_at": NOW,
            "upload_id": "evt-upload",
        },
    ]


def test_explicit_fields_and_numbers_as_strings_are_accepted(validate: Validate) -> None:
    event = CLICK | {
        "event_id": "evt-1",
        "timestamp": "2025-05-31T08:00:00+02:00",
        "rating": "4",
        "context": {"position": "2", "revenue": "10.50", "recommendation_id": "rec-9", "source": None},
    }

    result = validate.interactions_records([event])

    stored = result.table.to_pylist()[0]
    assert result.errors == []
    assert stored["event_id"] == "evt-1"
    assert stored["timestamp"] == datetime(2025, 5, 31, 6, 0, tzinfo=UTC)
    assert (stored["rating"], stored["position"], stored["revenue"]) == (4.0, 2, 10.5)
    assert (stored["recommendation_id"], stored["source"]) == ("rec-9", None)


def test_context_fields_may_also_come_at_top_level(validate: Validate) -> None:
    result = validate.interactions_records([CLICK | {"source": "email", "position": 3.0}])

    assert result.table.select(["source", "position"]).to_pylist() == [{"source": "email", "position": 3}]


def test_null_timestamp_means_now(validate: Validate) -> None:
    result = validate.interactions_records([CLICK | {"timestamp": None}])

    assert result.table.column("timestamp").to_pylist() == [NOW]


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        (CLICK | {"user_id": 42}, "user_id", "user_id must be a string, got number"),
        (CLICK | {"item_id": ["a"]}, "item_id", "item_id must be a string, got array"),
        (
            CLICK | {"interaction_type": True},
            "interaction_type",
            "interaction_type must be a string, got boolean",
        ),
        (CLICK | {"timestamp": 1735725000}, "timestamp", "timestamp must be a string, got number"),
        (CLICK | {"rating": True}, "rating", "rating must be a number, got boolean"),
        (CLICK | {"rating": {"v": 1}}, "rating", "rating must be a number, got object"),
        (CLICK | {"rating": "five"}, "rating", "rating must be a number, got 'five'"),
        (CLICK | {"rating": float("nan")}, "rating", "rating must be a finite number, got 'nan'"),
        (CLICK | {"context": "home"}, "context", "context must be an object, got string"),
        (CLICK | {"context": {"position": 1.5}}, "context.position", "position must be a whole number"),
        (CLICK | {"context": {"position": -1}}, "context.position", "position must be a whole number"),
        (CLICK | {"context": {"revenue": "lots"}}, "context.revenue", "revenue must be a number, got 'lots'"),
        (
            CLICK | {"context": {"revenue": []}},
            "context.revenue",
            "context.revenue must be a number, got array",
        ),
        (CLICK | {"context": {"source": 7}}, "context.source", "context.source must be a string, got number"),
        (CLICK | {"user_id": "bad\ud800"}, "user_id", "user_id is not valid UTF-8 (unpaired surrogate)"),
        (CLICK | {"user_id": None}, "user_id", "user_id is required"),
        ({"item_id": "i1", "interaction_type": "view"}, "user_id", "user_id is required"),
        (CLICK | {"interaction_type": "like"}, "interaction_type", "must be one of view, click"),
    ],
)
def test_wrong_types_and_values_are_row_errors(
    validate: Validate, event: dict[str, Any], field: str, message: str
) -> None:
    result = validate.interactions_records([event, CLICK])

    assert (result.accepted, result.rejected) == (1, 1)
    assert [(e.row, e.field) for e in result.errors] == [(1, field)]
    assert message in result.errors[0].message


def test_unknown_keys_are_row_errors_naming_the_key(validate: Validate) -> None:
    result = validate.interactions_records(
        [CLICK, CLICK | {"session": "s1"}, CLICK | {"context": {"page": "home"}}]
    )

    assert result.accepted == 1
    assert [(e.row, e.field) for e in result.errors] == [(2, "session"), (3, "context.page")]
    assert result.errors[0].message.startswith("unknown key 'session'; allowed keys: event_id, user_id")
    assert "unknown key 'page' in context" in result.errors[1].message


def test_a_field_both_at_top_level_and_in_context_is_rejected(validate: Validate) -> None:
    result = validate.interactions_records([CLICK | {"source": "a", "context": {"source": "b"}}])

    assert result.errors == [RowIssue(1, "source", "source given both at top level and in context")]


def test_non_object_elements_are_row_errors(validate: Validate) -> None:
    result = validate.interactions_records([CLICK, "click", None, [1, 2]])

    assert (result.accepted, result.rejected) == (1, 3)
    assert result.errors == [
        RowIssue(2, "_row", "must be a JSON object, got string"),
        RowIssue(3, "_row", "must be a JSON object, got null"),
        RowIssue(4, "_row", "must be a JSON object, got array"),
    ]


def test_empty_record_list_is_rejected_as_a_whole(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match="no records"):
        validate.interactions_records([])


def test_duplicate_event_ids_in_one_request(validate: Validate) -> None:
    result = validate.interactions_records([CLICK | {"event_id": "e1"}, CLICK | {"event_id": "e1"}])

    assert result.errors == [RowIssue(2, "event_id", "duplicate event_id 'e1', first seen at row 1")]


def test_json_events_for_unknown_items_are_warnings(validate: Validate) -> None:
    result = validate.interactions_records([CLICK], known_item_ids=frozenset({"other"}))

    assert result.accepted == 1
    assert [w.field for w in result.warnings] == ["item_id"]


# --- items ---------------------------------------------------------------------------------------


def test_item_records_accept_prices_as_numbers_or_strings(validate: Validate, fixture_bytes) -> None:
    result = validate.items_records(json.loads(fixture_bytes("items_records.json")))

    assert result.errors == []
    assert result.table.column("price").to_pylist() == [999.99, 2499.99]
    assert result.table.column("description").to_pylist() == ["Latest flagship smartphone", None]
    assert result.table.column("updated_at").to_pylist() == [NOW, NOW]


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        (ITEM | {"price": -1}, "price", "price must not be negative, got '-1'"),
        (ITEM | {"price": "abc"}, "price", "price must be a number, got 'abc'"),
        (ITEM | {"price": False}, "price", "price must be a number, got boolean"),
        (ITEM | {"price": None}, "price", "price is required"),
        (ITEM | {"price": float("inf")}, "price", "price must be a finite number"),
        (ITEM | {"title": 5}, "title", "title must be a string, got number"),
        (ITEM | {"colour": "red"}, "colour", "unknown key 'colour'"),
        (ITEM | {"context": {}}, "context", "unknown key 'context'"),
        ({"title": "T", "category": "C", "price": 1, "brand": "B"}, "item_id", "item_id is required"),
    ],
)
def test_bad_item_records_are_row_errors(
    validate: Validate, item: dict[str, Any], field: str, message: str
) -> None:
    result = validate.items_records([item, ITEM | {"item_id": "ok"}])

    assert (result.accepted, result.rejected) == (1, 1)
    assert [(e.row, e.field) for e in result.errors] == [(1, field)]
    assert message in result.errors[0].message


def test_duplicate_item_records(validate: Validate) -> None:
    result = validate.items_records([ITEM, ITEM | {"title": "again"}])

    assert result.errors == [RowIssue(2, "item_id", "duplicate item_id 'a1', first seen at row 1")]
