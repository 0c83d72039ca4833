"""JSON records to a text table: each key's JSON type, unknown keys and the interactions' ``context``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from functions.common.errors import FileRejectedError
from functions.ingestion.validation.decoding import RawTable
from functions.ingestion.validation.issues import BoolArray, clip, show

_STRING, _NUMBER, _INTEGER, _BOOLEAN = "string", "number", "integer", "boolean"
#: The JSON kind each key of an items record, and of an interactions record, must have.
ITEM_KEY_KINDS: dict[str, str] = {
    "item_id": _STRING,
    "title": _STRING,
    "category": _STRING,
    "price": _NUMBER,
    "brand": _STRING,
    "description": _STRING,
    "available": _BOOLEAN,
}
INTERACTION_KEY_KINDS: dict[str, str] = {
    "event_id": _STRING,
    "user_id": _STRING,
    "item_id": _STRING,
    "interaction_type": _STRING,
    "timestamp": _STRING,
    "rating": _NUMBER,
    "source": _STRING,
    "position": _INTEGER,
    "revenue": _NUMBER,
    "recommendation_id": _STRING,
}


#: Unknown keys listed one by one per record; more are summed up in one issue, so a record with
#: thousands of made-up keys costs a few issues, not thousands.
_LISTED_UNKNOWN_KEYS = 3


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _json_text(value: object, kind: str) -> tuple[str, str | None]:
    """The value as the text a CSV cell would hold, or why it cannot be one."""
    if value is None:
        return "", None
    if kind == _BOOLEAN and isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "", "is not valid UTF-8 (unpaired surrogate)"
        return value, None
    if kind != _STRING and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and kind == _INTEGER and value.is_integer():
            return str(int(value)), None
        return repr(value), None
    wanted = {_STRING: "a string", _BOOLEAN: "true or false"}.get(kind, "a number")
    return "", f"must be {wanted}, got {_json_type(value)}"


def records_to_raw(
    records: Sequence[object],
    kinds: Mapping[str, str],
    *,
    context_keys: Sequence[str],
    default_timestamp: str | None = None,
) -> RawTable:
    """Records as the text a CSV would hold; a row's key and type problems become its pre-issues."""
    if not records:
        raise FileRejectedError("no records: send one object or a non-empty list of objects")
    n = len(records)
    values: dict[str, list[str]] = {name: [""] * n for name in kinds}
    from_context: dict[str, BoolArray] = {name: np.zeros(n, dtype=np.bool_) for name in context_keys}
    issues: list[tuple[int, str, str]] = []
    allowed = ", ".join([*kinds, *(["context"] if context_keys else [])])
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            issues.append((index, "_row", f"must be a JSON object, got {_json_type(record)}"))
            continue
        if len(record) > len(kinds) + 1 + _LISTED_UNKNOWN_KEYS:  # not read key by key: bounded work
            issues.append((index, "_row", f"has {len(record):,} keys, more than the {len(kinds) + 1} known"))
            continue
        unknown = 0
        for key, value in record.items():
            if key == "context" and context_keys:
                _read_context(index, value, record, kinds, context_keys, values, from_context, issues)
            elif key in kinds:
                _store_json_value(index, str(key), value, kinds[key], values, issues)
            else:
                unknown += 1
                if unknown <= _LISTED_UNKNOWN_KEYS:
                    message = f"unknown key {show(str(key))}; allowed keys: {allowed}"
                    issues.append((index, clip(str(key)), message))
        if unknown > _LISTED_UNKNOWN_KEYS:
            issues.append((index, "_row", f"{unknown - _LISTED_UNKNOWN_KEYS} more unknown keys"))
    if default_timestamp is not None:
        values["timestamp"] = [text or default_timestamp for text in values["timestamp"]]
    columns = {
        name: pc.ascii_trim_whitespace(pa.array(texts, type=pa.string()))
        for name, texts in values.items()
        if any(texts)
    }
    raw = RawTable(columns, n, np.arange(1, n + 1, dtype=np.int64), n, pre_issues=issues)
    raw.context_rows = from_context
    return raw


def _store_json_value(
    index: int,
    name: str,
    value: object,
    kind: str,
    values: dict[str, list[str]],
    issues: list[tuple[int, str, str]],
) -> None:
    text, problem = _json_text(value, kind)
    if problem is not None:
        issues.append((index, name, f"{name} {problem}"))
    else:
        values[name][index] = text


def _read_context(
    index: int,
    context: object,
    record: Mapping[str, object],
    kinds: Mapping[str, str],
    context_keys: Sequence[str],
    values: dict[str, list[str]],
    from_context: dict[str, BoolArray],
    issues: list[tuple[int, str, str]],
) -> None:
    if context is None:
        return
    if not isinstance(context, Mapping):
        issues.append((index, "context", f"context must be an object, got {_json_type(context)}"))
        return
    if len(context) > len(context_keys) + _LISTED_UNKNOWN_KEYS:
        message = f"context has {len(context):,} keys, more than the {len(context_keys)} allowed"
        issues.append((index, "context", message))
        return
    unknown = 0
    for key, value in context.items():
        if key not in context_keys:
            unknown += 1
            if unknown <= _LISTED_UNKNOWN_KEYS:
                message = f"unknown key {show(str(key))} in context; allowed: {', '.join(context_keys)}"
                issues.append((index, f"context.{clip(str(key))}", message))
            elif unknown == _LISTED_UNKNOWN_KEYS + 1:
                issues.append((index, "context", "more unknown keys in context"))
        elif key in record:
            issues.append((index, str(key), f"{key} given both at top level and in context"))
        else:
            text, problem = _json_text(value, kinds[key])
            if problem is not None:
                issues.append((index, f"context.{key}", f"context.{key} {problem}"))
            else:
                values[key][index] = text
                from_context[key][index] = True
