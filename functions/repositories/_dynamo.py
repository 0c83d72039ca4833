"""Small helpers shared by the DynamoDB repositories."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.common.errors import ServiceUnavailableError

_CONDITION_FAILED = "ConditionalCheckFailedException"
_TRANSACTION_CANCELLED = "TransactionCanceledException"
# Answers about the data rather than failures of the service: the repositories turn them into
# NotFoundError/ConflictError themselves, so they pass through unchanged.
_SEMANTIC_CODES = frozenset(
    {_CONDITION_FAILED, _TRANSACTION_CANCELLED, "NoSuchKey", "NotFound", "404", "PreconditionFailed", "412"}
)


def is_condition_failure(exc: ClientError) -> bool:
    """Whether a write failed its condition (the only ClientError that is a caller's fault)."""
    return exc.response.get("Error", {}).get("Code") in (_CONDITION_FAILED, _TRANSACTION_CANCELLED)


@contextmanager
def unavailable_on_failure(what: str) -> Iterator[None]:
    """Turn an AWS failure (not an answer about the data) into ``ServiceUnavailableError``."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _SEMANTIC_CODES:
            raise
        raise ServiceUnavailableError(f"{what} is unavailable, please retry") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailableError(f"{what} is unavailable, please retry") from exc


def to_iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a trailing Z, as the API shows times."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """Parse what ``to_iso`` wrote."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_dynamo(value: object) -> Any:
    """A JSON-like value as DynamoDB stores it (floats become Decimal, which boto3 requires)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    """The inverse of ``to_dynamo``: Decimals back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [from_dynamo(item) for item in value]
    return value
