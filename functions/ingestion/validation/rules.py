"""The items and interactions rules: which checks run on which column, and the canonical table built."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from functions.ingestion import tables as sc
from functions.ingestion.validation.columns import (
    SeenValues,
    check_available,
    check_duplicates,
    check_id,
    check_interaction_type,
    check_number,
    check_position,
    check_text,
    check_timestamp,
    empty_to_null,
    text_at,
)
from functions.ingestion.validation.decoding import RawTable
from functions.ingestion.validation.issues import IssueLog, RowIssue, ValidationResult, show, to_numpy_bool


def _new_log(raw: RawTable, field_order: Sequence[str]) -> IssueLog:
    log = IssueLog(raw.row_numbers, field_order)
    for issue in raw.outside:
        log.add_outside(issue)
    for index, name, message in raw.pre_issues:
        log.add(index, name, message)
    for name, mask in raw.context_rows.items():
        log.label_from_context(name, mask)
    log.swallowed = raw.swallowed
    return log


def _required(raw: RawTable, name: str) -> pa.Array:
    # Required columns exist in every CSV (the header check) but may be absent from all JSON records.
    column = raw.get(name)
    return column if column is not None else pa.array([""] * raw.num_rows, pa.string())


def _constant_timestamp(moment: datetime, n: int) -> pa.Array:
    millis = int(moment.timestamp() * 1000)
    return pa.array(np.full(n, millis, dtype=np.int64), type=sc.TIMESTAMP_TYPE)


def _result(
    raw: RawTable, log: IssueLog, full: pa.Table, warnings: list[RowIssue], hidden: int
) -> ValidationResult:
    table = full if not log.bad.any() else full.filter(pa.array(~log.bad))
    errors, truncated = log.finish()
    return ValidationResult(
        table=table,
        rows_received=raw.rows_received,
        rejected=log.rejected,
        errors=errors,
        warnings=warnings,
        errors_truncated=truncated,
        warnings_truncated=hidden,
    )


def validate_items(raw: RawTable, *, now: datetime, seen: SeenValues | None = None) -> ValidationResult:
    """Check every items column and build the canonical table; a repeated ``item_id`` is rejected
    (also when ``seen`` says an earlier chunk of the upload accepted it)."""
    log = _new_log(raw, sc.ITEMS_JSON_KEYS)
    item_id = _required(raw, "item_id")
    check_id(log, "item_id", item_id, required=True)
    for name, limit in (("title", sc.MAX_TITLE_LENGTH), ("category", sc.MAX_LABEL_LENGTH)):
        check_text(log, name, _required(raw, name), max_length=limit, required=True)
    price = check_number(log, "price", _required(raw, "price"), required=True, ceiling=sc.MAX_AMOUNT)
    check_text(log, "brand", _required(raw, "brand"), max_length=sc.MAX_LABEL_LENGTH, required=True)
    description = raw.get("description")
    if description is not None:
        check_text(
            log,
            "description",
            description,
            max_length=sc.MAX_DESCRIPTION_LENGTH,
            required=False,
            multiline=True,
        )
    available = check_available(log, raw.get("available"), raw.num_rows)
    check_duplicates(log, "item_id", item_id, seen)
    n = raw.num_rows
    full = pa.Table.from_arrays(
        [
            item_id,
            _required(raw, "title"),
            _required(raw, "category"),
            price,
            _required(raw, "brand"),
            empty_to_null(description) if description is not None else pa.nulls(n, pa.string()),
            _constant_timestamp(now, n),
            available,
        ],
        schema=sc.ITEMS_SCHEMA,
    )
    return _result(raw, log, full, [], 0)


def _optional_text(raw: RawTable, name: str) -> pa.Array:
    column = raw.get(name)
    return empty_to_null(column) if column is not None else pa.nulls(raw.num_rows, pa.string())


def validate_interactions(
    raw: RawTable,
    *,
    upload_id: str,
    now: datetime,
    known_item_ids: pa.Array | None,
    seen: SeenValues | None = None,
) -> ValidationResult:
    """Check every interactions column; rows for items outside ``known_item_ids`` get a warning.

    A repeated ``event_id`` is rejected, also when ``seen`` says an earlier chunk accepted it.
    """
    n = raw.num_rows
    log = _new_log(raw, sc.INTERACTIONS_SCHEMA.names)
    for name in ("event_id", "recommendation_id"):
        optional_id = raw.get(name)
        if optional_id is not None:
            check_id(log, name, optional_id, required=False)
    user_id, item_id = _required(raw, "user_id"), _required(raw, "item_id")
    check_id(log, "user_id", user_id, required=True)
    check_id(log, "item_id", item_id, required=True)
    interaction_type = check_interaction_type(log, _required(raw, "interaction_type"))
    timestamp = check_timestamp(log, _required(raw, "timestamp"), now=now)
    numbers: dict[str, pa.Array] = {}
    rating, revenue = raw.get("rating"), raw.get("revenue")
    numbers["rating"] = (
        check_number(log, "rating", rating, required=False, maximum=sc.RATING_MAX)
        if rating is not None
        else pa.nulls(n, pa.float64())
    )
    numbers["revenue"] = (
        check_number(log, "revenue", revenue, required=False, ceiling=sc.MAX_AMOUNT)
        if revenue is not None
        else pa.nulls(n, pa.float64())
    )
    position_text = raw.get("position")
    position = check_position(log, position_text) if position_text is not None else pa.nulls(n, pa.int32())
    source = raw.get("source")
    if source is not None:
        check_text(log, "source", source, max_length=sc.MAX_LABEL_LENGTH, required=False)
    event_id = raw.get("event_id")
    if event_id is not None:
        check_duplicates(log, "event_id", event_id, seen)
    full = pa.Table.from_arrays(
        [
            _optional_text(raw, "event_id"),
            user_id,
            item_id,
            interaction_type,
            timestamp,
            numbers["rating"],
            _optional_text(raw, "source"),
            position,
            numbers["revenue"],
            _optional_text(raw, "recommendation_id"),
            _constant_timestamp(now, n),
            pa.repeat(pa.scalar(upload_id, pa.string()), n),
        ],
        schema=sc.INTERACTIONS_SCHEMA,
    )
    warnings, hidden = _unknown_item_warnings(item_id, log, known_item_ids)
    return _result(raw, log, full, warnings, hidden)


def _unknown_item_warnings(
    item_id: pa.Array, log: IssueLog, known_item_ids: pa.Array | None
) -> tuple[list[RowIssue], int]:
    if known_item_ids is None:
        return [], 0
    known = pc.is_in(item_id, value_set=known_item_ids)
    unknown = np.flatnonzero(~to_numpy_bool(known) & ~log.bad)
    listed = [
        RowIssue(
            int(log.row_numbers[index]),
            "item_id",
            f"unknown item_id {show(text_at(item_id, int(index)))}; stored, but it will be ignored "
            "by training until the item is in the catalogue",
        )
        for index in unknown[: sc.MAX_LISTED_ISSUES]
    ]
    return listed, int(unknown.size) - len(listed)
