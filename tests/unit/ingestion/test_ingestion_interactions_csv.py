"""Interactions CSV: columns, types, timestamps, numbers, duplicates, unknown items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from embedrec_local.bench_ingest import make_interactions_csv
from functions.ingestion.tables import INTERACTIONS_SCHEMA, MAX_LISTED_ISSUES
from functions.ingestion.validation import FileRejectedError, RowIssue

from .conftest import NOW, Validate

HEADER = "user_id,item_id,interaction_type,timestamp,rating"


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def row(
    *,
    user_id: str = "user_0001",
    item_id: str = "item_0001",
    interaction_type: str = "view",
    timestamp: str = "2025-01-01T10:30:00Z",
    rating: str = "",
) -> str:
    return ",".join([user_id, item_id, interaction_type, timestamp, rating])


# --- happy path --------------------------------------------------------------------------------


def test_seed_interactions_are_all_accepted(validate: Validate, fixture_bytes) -> None:
    result = validate.interactions_csv(fixture_bytes("interactions_seed.csv"), upload_id="up-42")

    assert (result.rows_received, result.accepted, result.rejected) == (5, 5, 0)
    assert result.errors == [] and result.warnings == []
    assert result.table.schema.equals(INTERACTIONS_SCHEMA)
    assert result.table.to_pylist()[0] == {
        "event_id": None,
        "user_id": "user_0001",
        "item_id": "item_0001",
        "interaction_type": "purchase",
        "timestamp": datetime(2025, 1, 1, 10, 30, tzinfo=UTC),
        "rating": 5.0,
        "source": None,
        "position": None,
        "revenue": None,
        "recommendation_id": None,
        "ingested_at": NOW,
        "upload_id": "up-42",
    }
    assert result.table.column("rating").to_pylist() == [5.0, None, 5.0, None, None]


def test_rating_column_is_optional(validate: Validate) -> None:
    result = validate.interactions_csv(
        csv("user_id,item_id,interaction_type,timestamp", "u1,i1,view,2025-01-01T00:00:00Z")
    )

    assert result.accepted == 1
    assert result.table.column("rating").to_pylist() == [None]


def test_optional_context_columns_are_stored(validate: Validate, fixture_bytes) -> None:
    result = validate.interactions_csv(fixture_bytes("interactions_mixed.csv"))

    first = result.table.to_pylist()[0]
    assert {k: first[k] for k in ("event_id", "source", "position", "revenue", "recommendation_id")} == {
        "event_id": "evt_1",
        "source": "recommendations",
        "position": 1,
        "revenue": 999.99,
        "recommendation_id": "rec_1",
    }


def test_generated_100k_rows_are_all_accepted(validate: Validate) -> None:
    data, catalogue = make_interactions_csv(100_000, seed=3)

    result = validate.interactions_csv(data, now=datetime(2025, 2, 1, tzinfo=UTC), known_item_ids=catalogue)

    assert (result.accepted, result.rejected, result.warnings) == (100_000, 0, [])


# --- whole-file rejections -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("user_id,item_id,interaction_type,rating", "'timestamp'"),
        ("user_id,item_id,timestamp", "'interaction_type'"),
        ("userid,item_id,interaction_type,timestamp", "'user_id'"),
    ],
)
def test_missing_required_column_rejects_the_file(validate: Validate, header: str, named: str) -> None:
    with pytest.raises(FileRejectedError) as caught:
        validate.interactions_csv(csv(header, "x"))

    assert named in caught.value.message
    assert "expected columns: user_id, item_id, interaction_type, timestamp" in caught.value.message
    assert "optionally rating, event_id, source, position, revenue, recommendation_id" in caught.value.message


def test_unknown_column_rejects_the_file(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match=r"unknown column\(s\): 'session_id'"):
        validate.interactions_csv(csv(HEADER + ",session_id", row() + ",s1"))


def test_header_only_rejects_the_file(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match="no data rows"):
        validate.interactions_csv(csv(HEADER))


# --- rows ----------------------------------------------------------------------------------------


def test_mixed_file_explains_each_rejection(validate: Validate, fixture_bytes) -> None:
    result = validate.interactions_csv(
        fixture_bytes("interactions_mixed.csv"),
        known_item_ids=frozenset({"item_0001", "item_0002", "item_0003"}),
    )

    assert (result.rows_received, result.accepted, result.rejected) == (8, 2, 6)
    assert result.table.column("event_id").to_pylist() == ["evt_1", "evt_4"]
    assert result.table.column("interaction_type").to_pylist() == ["purchase", "click"]
    assert [(e.row, e.field) for e in result.errors] == [
        (2, "interaction_type"),
        (3, "timestamp"),
        (5, "event_id"),
        (6, "rating"),
        (7, "position"),
        (8, "revenue"),
    ]
    assert result.errors[2].message == "duplicate event_id 'evt_1', first seen at row 1"
    assert result.warnings == [
        RowIssue(
            4,
            "item_id",
            "unknown item_id 'item_9999'; stored, but it will be ignored by training "
            "until the item is in the catalogue",
        )
    ]


@pytest.mark.parametrize("given", ["view", "VIEW", "Click", "add_to_cart", " Purchase "])
def test_interaction_types_are_case_insensitive_and_stored_lower_case(validate: Validate, given: str) -> None:
    result = validate.interactions_csv(csv(HEADER, row(interaction_type=given)))

    assert result.table.column("interaction_type").to_pylist() == [given.strip().lower()]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("like", "interaction_type must be one of view, click, add_to_cart, purchase, got 'like'"),
        (
            "add to cart",
            "interaction_type must be one of view, click, add_to_cart, purchase, got 'add to cart'",
        ),
        ("", "interaction_type is required"),
    ],
)
def test_unknown_interaction_types_are_rejected(validate: Validate, given: str, message: str) -> None:
    result = validate.interactions_csv(csv(HEADER, row(interaction_type=given)))

    assert result.errors == [RowIssue(1, "interaction_type", message)]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2025-01-01T10:30:00Z", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01T10:30:00+02:00", datetime(2025, 1, 1, 8, 30, tzinfo=UTC)),
        ("2025-01-01T10:30:00-0500", datetime(2025, 1, 1, 15, 30, tzinfo=UTC)),
        ("2025-01-01T10:30:00+02", datetime(2025, 1, 1, 8, 30, tzinfo=UTC)),
        ("2025-01-01 10:30:00Z", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01T10:30Z", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01T10:30:00.250Z", datetime(2025, 1, 1, 10, 30, 0, 250_000, tzinfo=UTC)),
        ("2025-01-01T10:30:00.123456Z", datetime(2025, 1, 1, 10, 30, 0, 123_000, tzinfo=UTC)),
        ("2025-01-01T10:30:00.5+01:00", datetime(2025, 1, 1, 9, 30, 0, 500_000, tzinfo=UTC)),
        # No zone: taken as UTC (documented in the module).
        ("2025-01-01T10:30:00", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01 10:30", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=UTC)),
    ],
)
def test_iso8601_timestamps_are_accepted_and_stored_in_utc(
    validate: Validate, given: str, expected: datetime
) -> None:
    result = validate.interactions_csv(csv(HEADER, row(timestamp=given)))

    assert result.errors == []
    assert result.table.column("timestamp").to_pylist() == [expected]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "timestamp is required"),
        (
            "yesterday",
            "timestamp must be an ISO-8601 date-time such as 2025-01-01T10:30:00Z, got 'yesterday'",
        ),
        ("1735725000", "must be an ISO-8601 date-time"),
        ("2025-01-01", "must be an ISO-8601 date-time"),
        ("01/02/2025 10:30", "must be an ISO-8601 date-time"),
        ("2025-01-01T10:30:00 UTC", "must be an ISO-8601 date-time"),
        ("2025-13-01T00:00:00Z", "timestamp is not a valid date-time, got '2025-13-01T00:00:00Z'"),
        ("2025-02-30T00:00:00Z", "timestamp is not a valid date-time, got '2025-02-30T00:00:00Z'"),
        ("2025-01-01T25:00:00Z", "timestamp is not a valid date-time"),
        ("2025-01-01T10:60:00Z", "timestamp is not a valid date-time"),
        ("2025-01-01T10:30:00+25:00", "timestamp is not a valid date-time"),
        ("2025-02-29T00:00:00Z", "timestamp is not a valid date-time"),
        ("2025-04-31T00:00:00Z", "timestamp is not a valid date-time"),
        ("1999-12-31T23:59:59Z", "timestamp is before 2000-01-01, got '1999-12-31T23:59:59Z'"),
        (
            "2025-06-02T12:00:01Z",
            "timestamp is in the future (more than 1 day after 2025-06-01T12:00:00.000Z)",
        ),
        ("2035-01-01T00:00:00Z", "timestamp is in the future"),
    ],
)
def test_bad_timestamps_are_rejected(validate: Validate, given: str, message: str) -> None:
    result = validate.interactions_csv(csv(HEADER, row(timestamp=given), row()))

    assert result.accepted == 1
    assert [(e.row, e.field) for e in result.errors] == [(1, "timestamp")]
    assert message in result.errors[0].message


def test_timestamps_up_to_one_day_ahead_are_accepted(validate: Validate) -> None:
    ahead = (NOW + timedelta(hours=23)).strftime("%Y-%m-%dT%H:%M:%SZ")

    result = validate.interactions_csv(csv(HEADER, row(timestamp=ahead)))

    assert result.errors == []


def test_many_invalid_calendar_dates_are_each_found(validate: Validate) -> None:
    # The vectorised cast fails for the whole column; the fallback must pin down exactly these rows.
    rows = [
        row(timestamp="2025-02-30T00:00:00Z" if i % 7 == 0 else "2025-02-03T00:00:00Z") for i in range(500)
    ]

    result = validate.interactions_csv(csv(HEADER, *rows))

    assert result.rejected == len(range(0, 500, 7))
    assert {e.row for e in result.errors} == {i + 1 for i in range(0, 500, 7)}


@pytest.mark.parametrize(
    ("rating", "message"),
    [
        ("5.5", "rating must be between 0 and 5, got '5.5'"),
        ("-1", "rating must be between 0 and 5, got '-1'"),
        ("good", "rating must be a number, got 'good'"),
        ("nan", "rating must be a finite number, got 'nan'"),
    ],
)
def test_bad_ratings_are_rejected(validate: Validate, rating: str, message: str) -> None:
    result = validate.interactions_csv(csv(HEADER, row(rating=rating)))

    assert result.errors == [RowIssue(1, "rating", message)]


@pytest.mark.parametrize(("rating", "stored"), [("", None), ("0", 0.0), ("5", 5.0), ("4.5", 4.5)])
def test_ratings_from_0_to_5_or_empty_are_accepted(
    validate: Validate, rating: str, stored: float | None
) -> None:
    result = validate.interactions_csv(csv(HEADER, row(rating=rating)))

    assert result.table.column("rating").to_pylist() == [stored]


CONTEXT_HEADER = (
    "user_id,item_id,interaction_type,timestamp,source,position,revenue,recommendation_id,event_id"
)


def context_row(
    source: str = "", position: str = "", revenue: str = "", recommendation_id: str = "", event_id: str = ""
) -> str:
    return f"u1,i1,click,2025-01-01T00:00:00Z,{source},{position},{revenue},{recommendation_id},{event_id}"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"position": "-1"}, "position", "position must be a whole number from 0 to 10000, got '-1'"),
        ({"position": "1.5"}, "position", "position must be a whole number"),
        ({"position": "first"}, "position", "position must be a whole number"),
        ({"position": "2147483648"}, "position", "position must be a whole number"),
        ({"position": "99999999999999999999"}, "position", "position must be a whole number"),
        ({"revenue": "-0.5"}, "revenue", "revenue must not be negative, got '-0.5'"),
        ({"revenue": "inf"}, "revenue", "revenue must be a finite number"),
        ({"revenue": "12 EUR"}, "revenue", "revenue must be a number"),
        ({"source": "s" * 129}, "source", "source is longer than 128 characters"),
        ({"recommendation_id": "rec 1"}, "recommendation_id", "must start with a letter or digit"),
        ({"event_id": "e" * 129}, "event_id", "event_id is longer than 128 characters"),
    ],
)
def test_bad_context_columns_are_rejected(
    validate: Validate, fields: dict[str, str], field: str, message: str
) -> None:
    result = validate.interactions_csv(csv(CONTEXT_HEADER, context_row(**fields)))

    assert [e.field for e in result.errors] == [field]
    assert message in result.errors[0].message


def test_good_context_columns_are_converted(validate: Validate) -> None:
    result = validate.interactions_csv(
        csv(CONTEXT_HEADER, context_row("home", "+0", "0", "r-1", "e1"), context_row("", "10000", "1e2"))
    )

    assert result.errors == []
    assert result.table.select(
        ["source", "position", "revenue", "recommendation_id", "event_id"]
    ).to_pylist() == [
        {"source": "home", "position": 0, "revenue": 0.0, "recommendation_id": "r-1", "event_id": "e1"},
        {
            "source": None,
            "position": 10000,
            "revenue": 100.0,
            "recommendation_id": None,
            "event_id": None,
        },
    ]


def test_duplicate_event_ids_reject_later_rows_but_empty_ids_never_clash(validate: Validate) -> None:
    result = validate.interactions_csv(
        csv(
            CONTEXT_HEADER,
            context_row(event_id="e1"),
            context_row(),
            context_row(),
            context_row(event_id="e1"),
        )
    )

    assert result.accepted == 3
    assert result.errors == [RowIssue(4, "event_id", "duplicate event_id 'e1', first seen at row 1")]


# --- unknown items -------------------------------------------------------------------------------


def test_unknown_items_are_accepted_with_warnings(validate: Validate) -> None:
    result = validate.interactions_csv(
        csv(
            HEADER, row(item_id="item_0001"), row(item_id="ghost"), row(item_id="ghost", interaction_type="x")
        ),
        known_item_ids=frozenset({"item_0001"}),
    )

    assert (result.accepted, result.rejected) == (2, 1)
    # The rejected row gets an error, not also a warning.
    assert [(w.row, w.field) for w in result.warnings] == [(2, "item_id")]
    assert "unknown item_id 'ghost'; stored, but it will be ignored by training" in result.warnings[0].message


def test_no_catalogue_means_no_unknown_item_warnings(validate: Validate) -> None:
    result = validate.interactions_csv(csv(HEADER, row(item_id="ghost")), known_item_ids=None)

    assert result.warnings == []


def test_unknown_item_warnings_are_capped_and_counted(validate: Validate) -> None:
    result = validate.interactions_csv(
        csv(HEADER, *(row(item_id=f"ghost{i}") for i in range(2500))), known_item_ids=frozenset()
    )

    assert result.accepted == 2500
    assert len(result.warnings) == MAX_LISTED_ISSUES
    assert result.warnings_truncated == 1500


def test_non_utf8_interaction_row_is_rejected(validate: Validate) -> None:
    data = HEADER.encode() + b"\n" + row().encode() + b"\nuser_\xe9,item_1,view,2025-01-01T00:00:00Z,\n"

    result = validate.interactions_csv(data)

    assert result.accepted == 1
    assert result.errors == [RowIssue(2, "_row", "not valid UTF-8")]


def test_ragged_interaction_rows_are_rejected(validate: Validate) -> None:
    result = validate.interactions_csv(csv(HEADER, row(), "u1,i1,view", row() + ",5,extra"))

    assert result.accepted == 1
    assert result.errors == [
        RowIssue(2, "_row", "expected 5 fields, got 3"),
        RowIssue(3, "_row", "expected 5 fields, got 7"),
    ]


def test_calendar_days_are_checked_column_wise_including_leap_years(validate: Validate) -> None:
    stamps = [
        "2024-02-29",
        "2025-02-29",
        "2000-02-29",
        "2024-12-31",
        "2025-11-31",
        "2024-02-30",
        "2025-01-31",
    ]

    result = validate.interactions_csv(csv(HEADER, *(row(timestamp=f"{day}T00:00:00Z") for day in stamps)))

    assert [e.row for e in result.errors] == [2, 5, 6]
    assert result.table.column("timestamp").to_pylist() == [
        datetime(2024, 2, 29, tzinfo=UTC),
        datetime(2000, 2, 29, tzinfo=UTC),
        datetime(2024, 12, 31, tzinfo=UTC),
        datetime(2025, 1, 31, tzinfo=UTC),
    ]
