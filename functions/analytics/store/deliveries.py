"""Handed-off impressions applied to the analytics table exactly once (``functions.analytics.deliveries``).

Parts of several messages share a transaction (``TransactWriteItems``, at most 100 actions and 4 MB):
their markers (put only if absent), their response rows, and ONE ``ADD`` per counter row, merged
across the messages, which is what the consumer's batching buys. A transaction cancelled because a
marker exists means that part was applied before (a redelivery): the part is dropped and the rest is
sent again. A transaction cancelled for another reason (a conflict with a concurrent writer of the
same row, throttling) is retried with backoff; when it still fails, the messages of its parts are
reported as failed (SQS redelivers them; the parts that did go through are skipped then).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.analytics.deliveries import ImpressionMessage, Part, parts_of
from functions.analytics.domain import CounterDelta
from functions.analytics.store.counters import add_expression, response_row_item
from functions.common.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MAX_ACTIONS = 100  # DynamoDB's limit per TransactWriteItems
MAX_TRANSACTION_BYTES = 3 * 1024 * 1024  # under the 4 MB limit, with room for keys and expressions
#: Markers outlive every redelivery: SQS keeps a message at most 14 days.
MARKER_TTL = timedelta(days=15)
_ATTEMPTS = 4
_BACKOFF_S = 0.05
_KB = 1024
_TRANSACTIONAL_UNITS_PER_KB = 2  # a transactional write costs twice a standard one
_COUNTER_ROW_BYTES = _KB  # counter rows stay under 1 KB (functions.analytics.keys): one unit each
_CANCELLED = "TransactionCanceledException"
_ALREADY_APPLIED = "ConditionalCheckFailed"


@dataclass
class _Transaction:
    parts: list[Part] = field(default_factory=list)
    counters: dict[tuple[str, str], CounterDelta] = field(default_factory=dict)
    rows: int = 0
    size: int = 0

    def actions_with(self, part: Part) -> int:
        new_counters = sum(1 for key in part.deltas if (part.tenant_id, key) not in self.counters)
        return len(self.parts) + self.rows + len(self.counters) + 1 + len(part.rows) + new_counters

    def add(self, part: Part) -> None:
        self.parts.append(part)
        self.rows += len(part.rows)
        self.size += _size(part)
        for key, delta in part.deltas.items():
            merged = self.counters.setdefault((part.tenant_id, key), CounterDelta())
            for name, value in delta.counters.items():
                merged.add(name, value)


def _size(part: Part) -> int:
    return 256 + sum(len(row.entries) + 128 for row in part.rows) + 96 * len(part.deltas)


def pack(parts: Iterable[Part]) -> list[list[Part]]:
    """Parts grouped into transactions (in order), each within DynamoDB's action and size limits."""
    groups: list[list[Part]] = []
    current = _Transaction()
    for part in parts:
        if current.parts and (
            current.actions_with(part) > MAX_ACTIONS or current.size + _size(part) > MAX_TRANSACTION_BYTES
        ):
            groups.append(current.parts)
            current = _Transaction()
        current.add(part)
    if current.parts:
        groups.append(current.parts)
    return groups


class DeliveryWriter:
    """Applies handed-off impressions; returns which messages could not be applied (to retry)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        attempts: int = _ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._attempts = attempts
        self._sleep = sleep
        self.write_units = 0  # of the transactions written so far (on-demand: billed write units)

    def apply(self, messages: Sequence[ImpressionMessage], now: datetime) -> set[str]:
        """Apply every message (each part once, ever); returns the delivery ids that failed."""
        unique = {message.delivery_id: message for message in messages}  # SQS may deliver one twice
        parts = [part for message in unique.values() for part in parts_of(message)]
        expires_at = int((now + MARKER_TTL).timestamp())
        failed: set[str] = set()
        for group in pack(parts):
            if not self._apply(group, expires_at):
                failed.update(part.delivery_id for part in group)
        return failed

    def _apply(self, parts: list[Part], expires_at: int) -> bool:
        """One transaction of ``parts``; False when it could not be written."""
        pending = list(parts)
        attempt = 0
        while pending:
            transaction = _Transaction()
            for part in pending:
                transaction.add(part)
            items, markers = self._items(transaction, expires_at)
            try:
                self._client.transact_write_items(TransactItems=items)
                self.write_units += write_units(items)
                return True
            except ClientError as exc:
                applied = _applied_before(exc, markers)
                if applied:
                    logger.info("impressions delivered again, skipped", extra={"parts": len(applied)})
                    pending = [part for part in pending if id(part) not in applied]
                    continue
                error = exc.response.get("Error", {}).get("Code", "")
            except BotoCoreError as exc:
                error = type(exc).__name__
            attempt += 1
            if attempt >= self._attempts:
                logger.warning(
                    "impressions not applied",
                    extra={"parts": len(pending), "error": error, "attempts": attempt},
                )
                return False
            self._sleep(_BACKOFF_S * 2**attempt * (0.5 + random.random()))  # noqa: S311 - jitter
        return True

    def _items(self, transaction: _Transaction, expires_at: int) -> tuple[list[Any], dict[int, Part]]:
        """The transaction's actions, and which action index is which part's marker."""
        items: list[Any] = []
        markers: dict[int, Part] = {}
        for part in transaction.parts:
            markers[len(items)] = part
            items.append(
                {
                    "Put": {
                        "TableName": self._table_name,
                        "Item": {
                            "tenant_id": {"S": part.tenant_id},
                            "counter_key": {"S": part.marker},
                            "expires_at": {"N": str(expires_at)},
                        },
                        "ConditionExpression": "attribute_not_exists(counter_key)",
                    }
                }
            )
        for part in transaction.parts:
            for row in part.rows:
                items.append(
                    {
                        "Put": {
                            "TableName": self._table_name,
                            "Item": response_row_item(
                                part.tenant_id, row.batch_id, row.expires_at, row.entries
                            ),
                        }
                    }
                )
        for (tenant_id, key), delta in sorted(transaction.counters.items()):
            if not any(delta.counters.values()):
                continue
            items.append(
                {
                    "Update": {
                        "TableName": self._table_name,
                        "Key": {"tenant_id": {"S": tenant_id}, "counter_key": {"S": key}},
                        **add_expression(delta),
                    }
                }
            )
        return items, markers


def write_units(items: list[Any]) -> int:
    """The write request units of a transaction of ``items``: two per KB (rounded up) of each item
    written. A put is sized from its attributes; a counter row's update as its whole row (< 1 KB)."""
    units = 0
    for action in items:
        size = _item_bytes(action["Put"]["Item"]) if "Put" in action else _COUNTER_ROW_BYTES
        units += _TRANSACTIONAL_UNITS_PER_KB * max(1, math.ceil(size / _KB))
    return units


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values (strings and numbers, as written)."""
    return sum(len(name.encode()) + len(next(iter(value.values())).encode()) for name, value in item.items())


def _applied_before(exc: ClientError, markers: dict[int, Part]) -> set[int]:
    """Parts (by ``id``) whose marker exists: the transaction was cancelled because they were applied."""
    if exc.response.get("Error", {}).get("Code") != _CANCELLED:
        return set()
    reasons: list[dict[str, Any]] = list(exc.response.get("CancellationReasons") or [])  # type: ignore[arg-type]
    return {
        id(markers[index])
        for index, reason in enumerate(reasons)
        if index in markers and reason.get("Code") == _ALREADY_APPLIED
    }
