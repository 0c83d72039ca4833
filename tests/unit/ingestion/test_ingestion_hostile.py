"""Hostile CSV and JSON input: hard caps answered with short messages, broken quotes, absurd numbers.

Speed is measured by ``make bench-hostile`` (docs/reliability.md); these tests pin the behaviour:
each hostile input is refused (or its rows rejected) with a message whose size does not grow with it.
"""

from __future__ import annotations

import pytest

from functions.ingestion import tables
from functions.ingestion.validation import FileRejectedError
from tests.unit.ingestion.conftest import Validate

ITEMS_HEADER = "item_id,title,category,price,brand,description"
INTERACTIONS_HEADER = "user_id,item_id,interaction_type,timestamp,revenue,position,event_id"
MESSAGE_LIMIT = 1000  # no message may grow with the input beyond this


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --- caps on the file's shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (ITEMS_HEADER + "".join(f",made_up_{i}" for i in range(50_000)), "header line is longer than"),
        (
            ",".join(["item_id", "title", "category", "price", "brand"] + [f"c{i}" for i in range(200)]),
            "columns",
        ),
        (",".join(["item_id"] * 300), "columns"),
        ("item_id,title,category,price,brand," + "x" * 3000, "unknown column"),
    ],
)
def test_oversized_headers_are_refused_with_a_short_message(
    validate: Validate, header: str, expected: str
) -> None:
    with pytest.raises(FileRejectedError) as caught:
        validate.items_csv(csv(header, "i1,T,C,1,B,"))

    assert expected in caught.value.message
    assert len(caught.value.message) < MESSAGE_LIMIT


def test_a_line_longer_than_any_valid_row_refuses_the_file(validate: Validate) -> None:
    long_line = "i2,T,C,1,B," + "d" * (tables.MAX_LINE_BYTES + 1)

    with pytest.raises(FileRejectedError) as caught:
        validate.items_csv(csv(ITEMS_HEADER, "i1,T,C,1,B,", long_line))

    assert "data line 2 is longer than" in caught.value.message
    assert len(caught.value.message) < MESSAGE_LIMIT


def test_too_many_lines_refuse_the_file(validate: Validate) -> None:
    data = csv(ITEMS_HEADER) + b"i,T,C,1,B,\n" * (tables.MAX_CSV_LINES + 1)

    with pytest.raises(FileRejectedError) as caught:
        validate.items_csv(data)

    assert f"more than {tables.MAX_CSV_LINES:,} lines" in caught.value.message


def test_a_huge_field_is_rejected_without_echoing_it(validate: Validate) -> None:
    result = validate.items_csv(csv(ITEMS_HEADER, "i" * 10_000 + ",T,C,1,B,", "ok,T,C,1,B,"))

    assert result.accepted == 1
    assert [e.field for e in result.errors] == ["item_id"]
    assert len(result.errors[0].message) < MESSAGE_LIMIT


# --- unbalanced quotes ----------------------------------------------------------------------------


def test_a_quote_never_closed_rejects_every_line_it_swallowed(validate: Validate) -> None:
    result = validate.items_csv(
        csv(ITEMS_HEADER, "a1,T,C,1,B,", 'a2,"T,C,1,B,', "a3,T,C,1,B,", "a4,T,C,1,B,")
    )

    assert (result.rows_received, result.accepted, result.rejected) == (4, 1, 3)
    assert [(e.row, e.field) for e in result.errors] == [(2, "_row"), (3, "_row"), (4, "_row")]
    assert "never closed" in result.errors[0].message
    assert "part of row 2" in result.errors[1].message


def test_a_quote_closed_lines_later_keeps_the_rows_after_it_numbered_by_line(validate: Validate) -> None:
    result = validate.items_csv(
        csv(ITEMS_HEADER, 'a1,"T,C,1,B,', "a2,T,C,1,B,", 'a3,T",C,1,B,', "a4,T,C,1,B,", "a5,T,C,-1,B,")
    )

    assert (result.rows_received, result.accepted, result.rejected) == (5, 1, 4)
    assert [(e.row, e.field) for e in result.errors] == [(1, "_row"), (2, "_row"), (3, "_row"), (5, "price")]


def test_an_unclosed_quote_in_the_description_swallows_no_rows_silently(validate: Validate) -> None:
    result = validate.items_csv(csv(ITEMS_HEADER, 'a1,T,C,1,B,"starts here', "a2,T,C,1,B,", "a3,T,C,1,B,"))

    assert (result.rows_received, result.accepted, result.rejected) == (3, 0, 3)
    assert result.errors[0].row == 1


def test_a_closed_multi_line_description_is_one_row(validate: Validate) -> None:
    result = validate.items_csv(csv(ITEMS_HEADER, 'a1,T,C,1,B,"two\nlines"', "a2,T,C,-1,B,"))

    assert (result.rows_received, result.accepted) == (2, 1)
    assert [(e.row, e.field) for e in result.errors] == [(2, "price")]


def test_many_swallowed_lines_are_counted_but_listed_only_up_to_the_limit(validate: Validate) -> None:
    lines = [f"a{i},T,C,1,B," for i in range(2 * tables.MAX_LISTED_ISSUES)]
    result = validate.items_csv(csv(ITEMS_HEADER, 'a,"T,C,1,B,', *lines))

    assert (result.rows_received, result.accepted) == (len(lines) + 1, 0)
    assert len(result.errors) == tables.MAX_LISTED_ISSUES
    assert result.errors_truncated == len(lines) + 1 - tables.MAX_LISTED_ISSUES


# --- numbers with a meaning -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e300", "1000000001", "1e10"])
def test_absurd_revenue_is_rejected(validate: Validate, value: str) -> None:
    result = validate.interactions_csv(
        csv(
            INTERACTIONS_HEADER,
            f"u1,i1,purchase,2025-01-01T00:00:00Z,{value},,",
            "u1,i1,view,2025-01-01T00:00:00Z,5,,",
        )
    )

    assert result.accepted == 1
    assert [e.field for e in result.errors] == ["revenue"]
    assert "at most 1e+09" in result.errors[0].message


def test_absurd_price_and_position_are_rejected(validate: Validate) -> None:
    items = validate.items_csv(csv(ITEMS_HEADER, "i1,T,C,1e300,B,", "i2,T,C,1e9,B,"))
    events = validate.interactions_csv(
        csv(
            INTERACTIONS_HEADER,
            "u1,i1,click,2025-01-01T00:00:00Z,,10001,",
            "u1,i1,click,2025-01-01T00:00:00Z,,10000,",
        )
    )

    assert ([e.field for e in items.errors], items.accepted) == (["price"], 1)
    assert ([e.field for e in events.errors], events.accepted) == (["position"], 1)


@pytest.mark.parametrize(
    "record",
    [
        {"revenue": True},
        {"rating": False},
        {"position": True},
        {"revenue": 1e300},
        {"context": {"revenue": 1e300}},
        {"context": {"position": True}},
    ],
)
def test_json_booleans_and_absurd_numbers_are_rejected(validate: Validate, record: dict[str, object]) -> None:
    event = {"user_id": "u1", "item_id": "i1", "interaction_type": "purchase"} | record

    result = validate.interactions_records([event])

    assert result.accepted == 0 and result.rejected == 1


def test_json_keys_are_not_echoed_in_full(validate: Validate) -> None:
    event = {"user_id": "u1", "item_id": "i1", "interaction_type": "view", "k" * 10_000: 1}

    result = validate.interactions_records([event, {**event, "context": {"c" * 10_000: 1}}])

    assert result.rejected == 2
    assert all(len(e.field) + len(e.message) < MESSAGE_LIMIT for e in result.errors)


def test_records_with_thousands_of_made_up_keys_cost_a_few_issues_each(validate: Validate) -> None:
    event = {"user_id": "u1", "item_id": "i1", "interaction_type": "view"}
    many = event | {f"k{i}": i for i in range(5_000)}
    few = event | {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    in_context = event | {"context": {f"c{i}": i for i in range(5_000)}}

    result = validate.interactions_records([many, few, in_context, event])

    assert (result.accepted, result.rejected) == (1, 3)
    assert len(result.errors) <= 3 + 4 + 1
    assert "has 5,003 keys" in result.errors[0].message
    assert [e.field for e in result.errors if e.row == 2] == ["a", "b", "c", "_row"]
