"""Items' optional ``available`` flag, in CSV and JSON."""

from __future__ import annotations

import pytest

from functions.ingestion.validation import RowIssue
from tests.unit.ingestion.conftest import Validate

HEADER = "item_id,title,category,price,brand,available"


@pytest.mark.parametrize(
    ("value", "available"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False), ("", True)],
)
def test_available_accepts_the_usual_spellings_and_empty_means_available(
    validate: Validate, value: str, available: bool
) -> None:
    result = validate.items_csv(f"{HEADER}\na1,T,C,1,B,{value}\n".encode())

    assert result.errors == []
    assert result.table.column("available").to_pylist() == [available]


def test_an_unreadable_available_rejects_the_row_only(validate: Validate) -> None:
    result = validate.items_csv(f"{HEADER}\na1,T,C,1,B,maybe\na2,T,C,1,B,false\n".encode())

    assert result.table.column("item_id").to_pylist() == ["a2"]
    assert result.errors == [RowIssue(1, "available", "available must be true or false, got 'maybe'")]


def test_json_items_take_booleans_and_reject_other_types(validate: Validate) -> None:
    base = {"title": "T", "category": "C", "price": 1, "brand": "B"}

    result = validate.items_records(
        [
            base | {"item_id": "a1", "available": False},
            base | {"item_id": "a2"},
            base | {"item_id": "a3", "available": [True]},
        ]
    )

    assert result.table.column("available").to_pylist() == [False, True]
    assert [(issue.row, issue.field) for issue in result.errors] == [(3, "available")]
