"""Vectorised column checks; each explains a failure in words only for the rows that get listed."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from contract.interactions import INTERACTION_TYPES
from functions.ingestion import tables as sc
from functions.ingestion.validation.issues import BoolArray, IntArray, IssueLog, show, to_numpy_bool

# RE2 (pyarrow) and Python's re agree on these; [0-9] rather than \d because Python's \d is Unicode.
_NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER_PATTERN = r"^[+-]?[0-9]{1,10}$"
# The shape of an ISO-8601 date-time (used to word messages) ...
_TIMESTAMP_SHAPE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
# ... and the same with every field in range, so that only day-of-month overflows (02-30) are left
# for the cast to refuse; those are found with vectorised calendar arithmetic, not row by row.
_TIMESTAMP_PATTERN = (
    r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]+)?)?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$"
)
_ZONE_PATTERN = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_CONTROL_PATTERN = r"[\x00-\x1f\x7f]"
# Descriptions may keep tabs and line breaks.
_CONTROL_PATTERN_MULTILINE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_NULL_STRING = pa.scalar(None, pa.string())


def text_at(column: pa.Array, index: int) -> str:
    """The text of one row of a text column."""
    text: str = column[index].as_py()
    return text


def _explain_present(name: str, column: pa.Array, why: Callable[[str], str]) -> Callable[[int], str]:
    """Explain a failed row: an empty value is missing, any other goes to ``why``."""

    def explain(index: int) -> str:
        value = text_at(column, index)
        return why(value) if value else f"{name} is required"

    return explain


def _nonempty(column: pa.Array) -> pa.Array:
    return pc.greater(pc.binary_length(column), 0)


def empty_to_null(column: pa.Array) -> pa.Array:
    """Absent (empty) values as null, for optional text columns."""
    return pc.if_else(_nonempty(column), column, _NULL_STRING)


def _cast_or_null(column: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast text; values the cast refuses (e.g. 2025-02-30) become null instead of failing all rows."""
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, OverflowError):
        pass
    # Bisect to the offending values: O(k log n) small casts for k bad values, on the error path only.
    failing = np.zeros(len(column), dtype=np.bool_)
    spans = [(0, len(column))]
    while spans:
        start, stop = spans.pop()
        try:
            pc.cast(column.slice(start, stop - start), target)
            continue
        except (pa.ArrowInvalid, OverflowError):
            if stop - start == 1:
                failing[start] = True
                continue
        middle = (start + stop) // 2
        spans.extend([(start, middle), (middle, stop)])
    return pc.cast(pc.if_else(pa.array(failing), _NULL_STRING, column), target)


def check_id(log: IssueLog, name: str, column: pa.Array, *, required: bool) -> None:
    """Ids match :data:`~functions.ingestion.tables.ID_PATTERN`; an optional id may be empty."""
    ok = pc.match_substring_regex(column, sc.ID_PATTERN)
    if not required:
        ok = pc.or_(ok, pc.invert(_nonempty(column)))

    def why(value: str) -> str:
        if len(value) > sc.MAX_ID_LENGTH:
            return f"{name} is longer than {sc.MAX_ID_LENGTH} characters"
        return (
            f"{name} must start with a letter or digit and contain only letters, digits and "
            f"_ . : @ / - (got {show(value)})"
        )

    log.check(name, ok, _explain_present(name, column, why))


def check_text(
    log: IssueLog, name: str, column: pa.Array, *, max_length: int, required: bool, multiline: bool = False
) -> None:
    """Text up to ``max_length`` characters with no control characters (multi-line keeps tabs and breaks)."""
    control = _CONTROL_PATTERN_MULTILINE if multiline else _CONTROL_PATTERN
    length = pc.utf8_length(column)
    ok = pc.and_(pc.less_equal(length, max_length), pc.invert(pc.match_substring_regex(column, control)))
    if required:
        ok = pc.and_(ok, pc.greater(length, 0))

    def why(value: str) -> str:
        if len(value) > max_length:
            return f"{name} is longer than {max_length} characters ({len(value)})"
        return f"{name} contains control characters (got {show(value)})"

    log.check(name, ok, _explain_present(name, column, why))


def _parse_number(column: pa.Array) -> pa.Array:
    """float64 per row; null where the text is empty or not a plain decimal number."""
    well_formed = pc.match_substring_regex(column, _NUMBER_PATTERN)
    return _cast_or_null(pc.if_else(well_formed, column, _NULL_STRING), pa.float64())


def check_number(
    log: IssueLog,
    name: str,
    column: pa.Array,
    *,
    required: bool,
    maximum: float | None = None,
    ceiling: float | None = None,
) -> pa.Array:
    """Finite numbers from 0 to ``maximum`` (a scale, e.g. ratings) or ``ceiling`` (an amount).

    Returns the parsed values (null where absent or bad).
    """
    numbers = _parse_number(column)
    ok = pc.and_(pc.is_finite(numbers), pc.greater_equal(numbers, 0.0))
    upper = maximum if maximum is not None else ceiling
    if upper is not None:
        ok = pc.and_(ok, pc.less_equal(numbers, upper))
    ok = pc.fill_null(ok, False)
    if not required:
        ok = pc.or_(ok, pc.invert(_nonempty(column)))

    def why(value: str) -> str:
        number = _parse_number(pa.array([value]))[0].as_py()
        if value.lower() in _NON_FINITE or (number is not None and not np.isfinite(number)):
            return f"{name} must be a finite number, got {show(value)}"
        if number is None:
            return f"{name} must be a number, got {show(value)}"
        if maximum is not None:
            return f"{name} must be between 0 and {maximum:g}, got {show(value)}"
        if ceiling is not None and number > ceiling:
            return f"{name} must be at most {ceiling:g} (a unit or parsing mistake?), got {show(value)}"
        return f"{name} must not be negative, got {show(value)}"

    log.check(name, ok, _explain_present(name, column, why))
    return numbers


def check_position(log: IssueLog, column: pa.Array) -> pa.Array:
    """Optional whole number 0..2**31-1; returns int32 values (null where absent/bad)."""
    well_formed = pc.match_substring_regex(column, _INTEGER_PATTERN)
    unsigned = pc.utf8_ltrim(pc.if_else(well_formed, column, _NULL_STRING), characters="+")
    numbers = _cast_or_null(unsigned, pa.int64())
    in_range = pc.fill_null(
        pc.and_(pc.greater_equal(numbers, 0), pc.less_equal(numbers, sc.MAX_POSITION)), False
    )
    ok = pc.or_(in_range, pc.invert(_nonempty(column)))

    def explain(index: int) -> str:
        return (
            f"position must be a whole number from 0 to {sc.MAX_POSITION}, got {show(text_at(column, index))}"
        )

    log.check("position", ok, explain)
    return pc.cast(pc.if_else(in_range, numbers, pa.scalar(None, pa.int64())), pa.int32())


def _parse_timestamps(column: pa.Array) -> pa.Array:
    """Timestamps (ms, UTC); null where the text is not an accepted ISO-8601 date-time."""
    text = pc.if_else(pc.match_substring_regex(column, _TIMESTAMP_PATTERN), column, _NULL_STRING)
    # The cast refuses digits below the unit; milliseconds are plenty for interactions.
    if pc.any(pc.match_substring(text, ".")).as_py():
        text = pc.replace_substring_regex(text, r"(\.[0-9]{3})[0-9]+", r"\1")
    # A timestamp without a zone is UTC (see the package docstring). Most files use "Z": skip the regex then.
    if not pc.all(pc.ends_with(text, "Z")).as_py():
        zoned = pc.match_substring_regex(text, _ZONE_PATTERN)
        text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, pa.scalar("Z"), pa.scalar("")))
    try:
        return pc.cast(text, sc.TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        text = pc.if_else(_day_exists(text), text, _NULL_STRING)
    return _cast_or_null(text, sc.TIMESTAMP_TYPE)


def _day_exists(text: pa.Array) -> BoolArray:
    """Whether YYYY-MM-DD (already matched by the pattern, or null) names a real calendar day."""

    def part(start: int, stop: int) -> npt.NDArray[np.int64]:
        digits = pc.utf8_slice_codeunits(text, start, stop)
        values: npt.NDArray[np.int64] = pc.fill_null(pc.cast(digits, pa.int64()), 1).to_numpy()
        return values

    year, month, day = part(0, 4), part(5, 7), part(8, 10)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[month - 1] + (
        leap & (month == 2)
    )
    exists: BoolArray = day <= days_in_month
    return exists


@functools.lru_cache(maxsize=256)
def _parse_one_timestamp(value: str) -> datetime | None:
    # Files that get a timestamp wrong tend to repeat the same wrong value; explain each once.
    moment: datetime | None = _parse_timestamps(pa.array([value], pa.string()))[0].as_py()
    return moment


def check_timestamp(log: IssueLog, column: pa.Array, *, now: datetime) -> pa.Array:
    """Required timestamps from 2000-01-01 to ``now`` + 1 day; returns them parsed (null where bad)."""
    parsed = _parse_timestamps(column)
    earliest = pa.scalar(sc.EARLIEST_TIMESTAMP, sc.TIMESTAMP_TYPE)
    latest = pa.scalar(now + sc.FUTURE_TOLERANCE, sc.TIMESTAMP_TYPE)
    ok = pc.and_(pc.greater_equal(parsed, earliest), pc.less_equal(parsed, latest))

    def why(value: str) -> str:
        if re.fullmatch(_TIMESTAMP_SHAPE, value) is None:
            return f"timestamp must be an ISO-8601 date-time such as 2025-01-01T10:30:00Z, got {show(value)}"
        moment = _parse_one_timestamp(value)
        if moment is None:
            return f"timestamp is not a valid date-time, got {show(value)}"
        if moment < sc.EARLIEST_TIMESTAMP:
            return f"timestamp is before {sc.EARLIEST_TIMESTAMP.date().isoformat()}, got {show(value)}"
        return f"timestamp is in the future (more than 1 day after {iso_ms(now)}), got {show(value)}"

    log.check("timestamp", ok, _explain_present("timestamp", column, why))
    return parsed


def check_interaction_type(log: IssueLog, column: pa.Array) -> pa.Array:
    """One of the known interaction types in any case; returns the column lower-cased."""
    lowered = pc.ascii_lower(column)
    ok = pc.is_in(lowered, value_set=pa.array(INTERACTION_TYPES, pa.string()))

    def why(value: str) -> str:
        return f"interaction_type must be one of {', '.join(INTERACTION_TYPES)}, got {show(value)}"

    log.check("interaction_type", ok, _explain_present("interaction_type", column, why))
    return lowered


@dataclass
class SeenValues:
    """Values accepted by earlier chunks of the same upload, with the row each was accepted at.

    Kept as Arrow arrays (a few tens of bytes per value), one per chunk: the only state a chunk
    leaves behind for the duplicate check of the next ones.
    """

    values: list[pa.Array] = field(default_factory=list)
    rows: list[IntArray] = field(default_factory=list)

    def first_rows(self, column: pa.Array) -> IntArray:
        """The row at which each value was accepted earlier; -1 where it was not."""
        found = np.full(len(column), -1, dtype=np.int64)
        for values, rows in zip(self.values, self.rows, strict=True):
            index = pc.fill_null(pc.index_in(column, value_set=values), -1).to_numpy()
            hit = (index >= 0) & (found < 0)
            found[hit] = rows[index[hit]]
        return found

    def add(self, values: pa.Array, rows: IntArray) -> None:
        """Remember a chunk's accepted values."""
        if len(values):
            self.values.append(values)
            self.rows.append(rows)


def check_duplicates(log: IssueLog, name: str, column: pa.Array, earlier: SeenValues | None = None) -> None:
    """Reject later rows repeating a value of ``column`` among the rows still accepted.

    ``earlier`` holds the values earlier chunks of the upload accepted; this chunk's accepted values
    are added to it.
    """
    candidates = np.flatnonzero(~log.bad & to_numpy_bool(_nonempty(column)))
    rows = log.row_numbers
    first_row = np.full(len(log.bad), -1, dtype=np.int64)
    if candidates.size and earlier is not None and earlier.values:
        first_row[candidates] = earlier.first_rows(column.take(pa.array(candidates)))
    if candidates.size >= 2:
        encoded = column.take(pa.array(candidates)).dictionary_encode()
        if len(encoded.dictionary) != candidates.size:
            codes = encoded.indices.to_numpy()
            # Codes are numbered in order of first appearance, so return_index gives each code's first row.
            _, first_of_code = np.unique(codes, return_index=True)
            first = first_of_code[codes]
            repeats = first != np.arange(codes.size)
            later = candidates[repeats]
            inside = first_row[later] < 0  # a value accepted by an earlier chunk was seen there first
            first_row[later[inside]] = rows[candidates[first[repeats]][inside]]

    def explain(index: int) -> str:
        return f"duplicate {name} {show(text_at(column, index))}, first seen at row {int(first_row[index])}"

    log.check(name, first_row < 0, explain)
    if earlier is not None and candidates.size:
        accepted = candidates[first_row[candidates] < 0]
        earlier.add(column.take(pa.array(accepted)), rows[accepted])


def check_available(log: IssueLog, column: pa.Array | None, n: int) -> pa.Array:
    """Optional ``available`` flag: true/false, 1/0, yes/no (any case); empty means available."""
    if column is None:
        return pa.repeat(pa.scalar(True), n)
    lowered = pc.utf8_lower(column)
    yes = pc.is_in(lowered, value_set=pa.array(sc.AVAILABLE_TRUE))
    no = pc.is_in(lowered, value_set=pa.array(sc.AVAILABLE_FALSE))
    log.check(
        "available",
        pc.or_(pc.or_(yes, no), pc.invert(_nonempty(column))),
        lambda index: f"available must be true or false, got {show(text_at(column, index))}",
    )
    return pc.invert(no)


def iso_ms(moment: datetime) -> str:
    """``moment`` in UTC as ISO-8601 with milliseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
