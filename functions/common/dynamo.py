"""Small helpers shared by the DynamoDB repositories."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key as DynamoKey
from botocore.exceptions import BotoCoreError, ClientError

from contract.s3 import NOT_FOUND_CODES
from functions.common.errors import NotFoundError, ServiceUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_CONDITION_FAILED = "ConditionalCheckFailedException"
_TRANSACTION_CANCELLED = "TransactionCanceledException"
# Answers about the data rather than failures of the service: the repositories turn them into
# NotFoundError/ConflictError themselves, so they pass through unchanged.
_SEMANTIC_CODES = frozenset(
    {
        _CONDITION_FAILED,
        _TRANSACTION_CANCELLED,
        *NOT_FOUND_CODES,
        "PreconditionFailed",
        "412",
        "304",  # a conditional GET's "not modified"
    }
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


@contextmanager
def conditional_write(what: str, refused: Exception) -> Iterator[None]:
    """Run a conditional write: a failed condition raises ``refused``; an AWS failure, as in
    :func:`unavailable_on_failure`, ``ServiceUnavailableError``."""
    try:
        with unavailable_on_failure(what):
            yield
    except ClientError as exc:
        if is_condition_failure(exc):
            raise refused from exc
        raise


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


def query_partition(table: Table, key_name: str, key_value: str, *, what: str) -> list[dict[str, Any]]:
    """Every item of one partition (all pages), as plain Python values."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyConditionExpression": DynamoKey(key_name).eq(key_value)}
    with unavailable_on_failure(what):
        while True:
            page = table.query(**kwargs)
            items.extend(from_dynamo(dict(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def get_record(table: Table, key: dict[str, str], *, what: str, missing: str) -> dict[str, Any]:
    """One item by its full key (consistent read); ``NotFoundError(missing)`` when there is none."""
    with unavailable_on_failure(what):
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
    if item is None:
        raise NotFoundError(missing)
    record: dict[str, Any] = from_dynamo(dict(item))
    return record


class _Refused(Exception):
    """A conditional write's condition failed (``write_if`` answers False)."""


def write_if(what: str, write: Callable[[], object]) -> bool:
    """Run one conditional write; False when its condition failed (an answer about the data, which the
    caller turns into its own error or ignores), True when it wrote. AWS failures as in
    ``conditional_write``."""
    try:
        with conditional_write(what, _Refused()):
            write()
    except _Refused:
        return False
    return True


def release_if_held(
    table: Table, key: dict[str, str], *, holder_attribute: str, holder: str, what: str
) -> None:
    """Delete a lock item ``key`` if ``holder`` still holds it (idempotent: another holder's lock stays)."""
    write_if(
        what,
        lambda: table.delete_item(
            Key=key,
            ConditionExpression="#holder = :holder",
            ExpressionAttributeNames={"#holder": holder_attribute},
            ExpressionAttributeValues={":holder": holder},
        ),
    )
