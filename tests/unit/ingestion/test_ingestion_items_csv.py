"""Items CSV: file-level rejections, field rules, duplicates, row numbering."""

from __future__ import annotations

from datetime import datetime

import pytest

from functions.ingestion.tables import ITEMS_SCHEMA, MAX_LISTED_ISSUES
from functions.ingestion.validation import FileRejectedError, RowIssue

from .conftest import NOW, Validate

HEADER = "item_id,title,category,price,brand,description"
GOOD_ROW = "item_0001,iPhone 15 Pro,Smartphones,999.99,Apple,Latest flagship smartphone"


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def one_row(validate: Validate, **overrides: str) -> tuple[int, list[RowIssue]]:
    """Validate the good row with some fields replaced; return (accepted, errors)."""
    values = dict(zip(HEADER.split(","), GOOD_ROW.split(","), strict=True)) | overrides
    line = ",".join(f'"{v}"' if "," in v or "\n" in v else v for v in values.values())
    result = validate.items_csv(csv(HEADER, line))
    return result.accepted, result.errors


# --- happy path --------------------------------------------------------------------------------


def test_seed_items_are_all_accepted(validate: Validate, fixture_bytes) -> None:
    result = validate.items_csv(fixture_bytes("items_seed.csv"))

    assert (result.rows_received, result.accepted, result.rejected) == (5, 5, 0)
    assert result.errors == [] and result.warnings == []
    assert result.table.schema.equals(ITEMS_SCHEMA)
    first = result.table.to_pylist()[0]
    assert first == {
        "item_id": "item_0001",
        "title": "iPhone 15 Pro",
        "category": "Smartphones",
        "price": 999.99,
        "brand": "Apple",
        "description": "Latest flagship smartphone",
        "updated_at": NOW,
        "available": True,  # no ``available`` column: every item is available
    }


def test_description_column_is_optional(validate: Validate) -> None:
    result = validate.items_csv(csv("item_id,title,category,price,brand", "a1,T,C,1,B"))

    assert result.accepted == 1
    assert result.table.column("description").to_pylist() == [None]


def test_columns_may_come_in_any_order_with_bom_and_spaces(validate: Validate) -> None:
    data = "\ufeff price , item_id,brand,title,category\r\n1.5,a1,B,T,C\r\n".encode()

    result = validate.items_csv(data)

    assert result.accepted == 1
    assert result.table.column("price").to_pylist() == [1.5]


def test_values_are_trimmed_and_empty_description_is_null(validate: Validate) -> None:
    result = validate.items_csv(csv(HEADER, "  a1 , Title ,Cat, 5 ,Brand,   "))

    assert result.table.to_pylist()[0] | {"updated_at": None} == {
        "item_id": "a1",
        "title": "Title",
        "category": "Cat",
        "price": 5.0,
        "brand": "Brand",
        "description": None,
        "updated_at": None,
        "available": True,
    }


def test_quoted_fields_keep_commas_and_newlines(validate: Validate, fixture_bytes) -> None:
    result = validate.items_csv(fixture_bytes("items_mixed.csv"))

    last = result.table.to_pylist()[-1]
    assert last["title"] == "Sony WH-1000XM5, black"
    assert last["description"] == "Noise cancelling\nover-ear headphones"


# --- whole-file rejections -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("item_id,title,category,brand,description", "'price'"),
        ("item_id,title,category,price", "'brand'"),
        ("Item_ID,title,category,price,brand", "'item_id'"),  # case-sensitive
    ],
)
def test_missing_required_column_rejects_the_file(validate: Validate, header: str, named: str) -> None:
    with pytest.raises(FileRejectedError) as caught:
        validate.items_csv(csv(header, "x"))

    assert "missing required column" in caught.value.message
    assert named in caught.value.message
    assert "expected columns: item_id, title, category, price, brand" in caught.value.message


def test_unknown_column_rejects_the_file(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match=r"unknown column\(s\): 'color'.*expected columns"):
        validate.items_csv(csv(HEADER + ",color", GOOD_ROW + ",red"))


def test_repeated_column_rejects_the_file(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match=r"repeated column\(s\): 'price'"):
        validate.items_csv(csv(HEADER + ",price", GOOD_ROW + ",1"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \n\r\n ", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (HEADER.encode(), "no data rows"),
        (HEADER.encode() + b"\n", "no data rows"),
        (HEADER.encode() + b"\r\n\r\n  \n", "no data rows"),
    ],
)
def test_empty_file_or_header_only_rejects_the_file(validate: Validate, data: bytes, message: str) -> None:
    with pytest.raises(FileRejectedError, match=message):
        validate.items_csv(data)


def test_non_utf8_header_rejects_the_file(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match="header line is not valid UTF-8"):
        validate.items_csv(b"item_id,t\xefitle,category,price,brand\na,b,c,1,d\n")


def test_missing_header_is_reported_as_unknown_columns(validate: Validate) -> None:
    with pytest.raises(FileRejectedError, match="unknown column.*'item_0001'.*first line"):
        validate.items_csv(csv(GOOD_ROW))


# --- row-level problems ------------------------------------------------------------------------


def test_mixed_file_keeps_good_rows_and_explains_each_rejection(validate: Validate, fixture_bytes) -> None:
    result = validate.items_csv(fixture_bytes("items_mixed.csv"))

    assert (result.rows_received, result.accepted, result.rejected) == (7, 2, 5)
    assert result.table.column("item_id").to_pylist() == ["item_0001", "item_0007"]
    assert [(e.row, e.field) for e in result.errors] == [
        (2, "price"),
        (3, "price"),
        (4, "item_id"),
        (5, "_row"),
        (6, "item_id"),
    ]
    assert result.errors[0].message == "price must not be negative, got '-2499.99'"
    assert result.errors[1].message == "price must be a number, got 'cheap'"
    assert result.errors[2].message == "duplicate item_id 'item_0001', first seen at row 1"
    assert result.errors[3].message == "expected 6 fields, got 4"
    assert "must start with a letter or digit" in result.errors[4].message


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("-1", "price must not be negative, got '-1'"),
        ("-0.01", "price must not be negative, got '-0.01'"),
        ("abc", "price must be a number, got 'abc'"),
        ("9,99", "price must be a number, got '9,99'"),
        ("$5", "price must be a number, got '$5'"),
        ("1_000", "price must be a number, got '1_000'"),
        ("0x10", "price must be a number, got '0x10'"),
        ("nan", "price must be a finite number, got 'nan'"),
        ("NaN", "price must be a finite number, got 'NaN'"),
        ("inf", "price must be a finite number, got 'inf'"),
        ("-Infinity", "price must be a finite number, got '-Infinity'"),
        ("1e999", "price must be a finite number, got '1e999'"),
        ("", "price is required"),
    ],
)
def test_bad_prices_are_rejected_precisely(validate: Validate, price: str, message: str) -> None:
    accepted, errors = one_row(validate, price=price)

    assert accepted == 0
    assert errors == [RowIssue(1, "price", message)]


@pytest.mark.parametrize(
    ("price", "value"), [("0", 0.0), ("12", 12.0), ("+5", 5.0), (".5", 0.5), ("1e3", 1000.0)]
)
def test_plain_decimal_prices_are_accepted(validate: Validate, price: str, value: float) -> None:
    result = validate.items_csv(csv(HEADER, f"a1,T,C,{price},B,"))

    assert result.table.column("price").to_pylist() == [value]


@pytest.mark.parametrize(
    ("item_id", "message"),
    [
        ("", "item_id is required"),
        ("has space", "must start with a letter or digit"),
        ("-leading", "must start with a letter or digit"),
        ("ünïcode", "must start with a letter or digit"),
        ("semi;colon", "must start with a letter or digit"),
        ("x" * 129, "item_id is longer than 128 characters"),
    ],
)
def test_bad_item_ids_are_rejected(validate: Validate, item_id: str, message: str) -> None:
    accepted, errors = one_row(validate, item_id=item_id)

    assert accepted == 0
    assert [e.field for e in errors] == ["item_id"]
    assert message in errors[0].message


@pytest.mark.parametrize("item_id", ["a", "0", "A-1_b.c:d@e/f", "x" * 128, "SKU/2024/0001"])
def test_good_item_ids_are_accepted(validate: Validate, item_id: str) -> None:
    accepted, errors = one_row(validate, item_id=item_id)

    assert (accepted, errors) == (1, [])


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"title": ""}, "title", "title is required"),
        ({"title": "t" * 513}, "title", "title is longer than 512 characters (513)"),
        ({"title": "bell\x07"}, "title", "title contains control characters"),
        ({"category": ""}, "category", "category is required"),
        ({"category": "c" * 129}, "category", "category is longer than 128 characters"),
        ({"brand": ""}, "brand", "brand is required"),
        ({"brand": "Acme\tInc"}, "brand", "brand contains control characters"),
        ({"description": "d" * 5001}, "description", "description is longer than 5000 characters"),
    ],
)
def test_bad_text_fields_are_rejected(
    validate: Validate, overrides: dict[str, str], field: str, message: str
) -> None:
    accepted, errors = one_row(validate, **overrides)

    assert accepted == 0
    assert [e.field for e in errors] == [field]
    assert message in errors[0].message


def test_text_limits_are_inclusive(validate: Validate) -> None:
    accepted, errors = one_row(
        validate, title="t" * 512, category="c" * 128, brand="b" * 128, description="d\tx\ny" + "d" * 4994
    )

    assert (accepted, errors) == (1, [])


def test_a_row_with_several_problems_lists_each_in_column_order(validate: Validate) -> None:
    result = validate.items_csv(csv(HEADER, ",,Cat,-3,,"))

    assert result.rejected == 1
    assert [e.field for e in result.errors] == ["item_id", "title", "price", "brand"]


def test_duplicate_item_id_rejects_later_rows(validate: Validate) -> None:
    result = validate.items_csv(csv(HEADER, "a1,T,C,1,B,", "a2,T,C,1,B,", "a1,T2,C,2,B,", "a1,T3,C,3,B,"))

    assert result.table.column("title").to_pylist() == ["T", "T"]
    assert result.errors == [
        RowIssue(3, "item_id", "duplicate item_id 'a1', first seen at row 1"),
        RowIssue(4, "item_id", "duplicate item_id 'a1', first seen at row 1"),
    ]


def test_duplicate_of_a_rejected_row_is_accepted(validate: Validate) -> None:
    # The first a1 is rejected (bad price), so the second is the only one stored: nothing is lost.
    result = validate.items_csv(csv(HEADER, "a1,T,C,oops,B,", "a1,T,C,2,B,"))

    assert result.table.column("price").to_pylist() == [2.0]
    assert [(e.row, e.field) for e in result.errors] == [(1, "price")]


def test_ragged_rows_are_rejected_and_later_rows_keep_their_numbers(validate: Validate) -> None:
    result = validate.items_csv(
        csv(HEADER, "a1,T,C,1,B,", "a2,T,C", "", "a3,T,C,1,B,,extra", "a4,T,C,-1,B,", "a5,T,C,1,B,")
    )

    assert (result.rows_received, result.accepted, result.rejected) == (5, 2, 3)
    assert result.errors == [
        RowIssue(2, "_row", "expected 6 fields, got 3"),
        RowIssue(3, "_row", "expected 6 fields, got 7"),
        RowIssue(4, "price", "price must not be negative, got '-1'"),
    ]


def test_unbalanced_quote_is_reported_with_a_hint(validate: Validate) -> None:
    result = validate.items_csv(csv(HEADER, "a1,T,C,1,B,", 'a2,"T,C,1,B,', "a3,T,C,1,B,"))

    assert result.accepted == 1
    assert result.errors[0].field == "_row"
    assert "unbalanced quote" in result.errors[0].message


def test_non_utf8_row_is_rejected_and_the_others_kept(validate: Validate, fixture_bytes) -> None:
    result = validate.items_csv(fixture_bytes("items_latin1.csv"))

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.errors == [RowIssue(1, "_row", "not valid UTF-8")]
    assert result.table.column("item_id").to_pylist() == ["item_0002"]


def test_non_utf8_in_a_ragged_row_does_not_crash(validate: Validate) -> None:
    data = HEADER.encode() + b"\na1,T\xff\na2,T,C,1,B,\n"

    result = validate.items_csv(data)

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.errors[0].field == "_row"


def test_nul_byte_in_a_file_with_bad_utf8_is_rejected_as_such(validate: Validate) -> None:
    data = HEADER.encode() + b"\na1,T\x00,C,1,B,\na2,\xff,C,1,B,\na3,T,C,1,B,\n"

    result = validate.items_csv(data)

    assert result.accepted == 1
    assert [(e.row, e.field) for e in result.errors] == [(1, "_row"), (2, "_row")]
    assert "NUL" in result.errors[0].message


def test_nul_byte_in_valid_utf8_is_a_control_character(validate: Validate) -> None:
    result = validate.items_csv(HEADER.encode() + b"\na1,T\x00,C,1,B,\n")

    assert result.errors == [RowIssue(1, "title", "title contains control characters (got 'T\\x00')")]


def test_error_list_is_capped_but_every_rejection_counted(validate: Validate) -> None:
    rows = [f"a{i},T,C,{'-1' if i % 2 else '1'},{'' if i % 2 else 'B'}," for i in range(3000)]

    result = validate.items_csv(csv(HEADER, *rows))

    assert (result.accepted, result.rejected) == (1500, 1500)
    assert len(result.errors) == MAX_LISTED_ISSUES
    assert result.errors_truncated == 2 * 1500 - MAX_LISTED_ISSUES
    # The listed issues are the first ones, in row order.
    assert result.errors[:2] == [
        RowIssue(2, "price", "price must not be negative, got '-1'"),
        RowIssue(2, "brand", "brand is required"),
    ]
    assert result.errors[-1].row == 1000


def test_naive_now_is_a_programming_error(validate: Validate) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate.items_csv(csv(HEADER, GOOD_ROW), now=datetime(2025, 1, 1))


def test_blank_lines_before_the_header_are_skipped(validate: Validate) -> None:
    result = validate.items_csv(b"\xef\xbb\xbf\r\n\n" + csv(HEADER, GOOD_ROW))

    assert result.accepted == 1
