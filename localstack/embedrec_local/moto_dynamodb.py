"""moto's ``TransactWriteItems`` at the cost of the items it names, not of the whole table.

moto backs up every table a transaction names with a deep copy before writing (and restores it on
cancellation): a claim of 100 event ids against a table of a million claims copied the million, and a
copy taken while another request thread wrote raised "dictionary changed size during iteration". Here
the conditions are checked first (a cancelled transaction writes nothing, as in DynamoDB) and only the
named items are remembered for the rollback of a write that fails half-way. Transactions are
serialised with each other; the answers (``CancellationReasons`` per item, the validation errors) are
moto's own.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.Lock()
_MAX_ITEMS = 100
_installed = False


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > _MAX_ITEMS:
        raise TooManyTransactionsException()
    with _LOCK:
        operations: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        named: set[tuple[str, str]] = set()
        errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise MockValidationException("Unsupported transaction operation")
            key = _key_of(self, op_type, op)
            identity = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if identity in named:
                raise MultipleTransactionsException()
            named.add(identity)
            operations.append((op_type, op, key))
            condition = op.get("ConditionExpression")
            if condition is None:
                errors.append((None, None, None))
                continue
            current = self.get_item(op["TableName"], key)
            test = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if test.expr(current):
                errors.append((None, None, None))
                continue
            old = (
                current.to_json()["Attributes"]
                if current is not None and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                else None
            )
            failure = ConditionalCheckFailed(item=old)
            errors.append(("ConditionalCheckFailed", str(failure.message), old))  # type: ignore[arg-type]
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        _apply(self, operations)


def _apply(self: DynamoDBBackend, operations: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """Write every operation; should one fail, put the named items back as they were and re-raise."""
    before = [(op["TableName"], key, self.get_item(op["TableName"], key)) for op_type, op, key in operations]
    saved = [(table, key, item.to_json()["Attributes"] if item else None) for table, key, item in before]
    try:
        for op_type, op, key in operations:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"])
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=cast(dict[str, Any], names),
                    expression_attribute_values=cast(dict[str, Any], values),
                )
    except Exception:
        for table, key, attributes in saved:
            if attributes is None:
                if self.get_item(table, key) is not None:
                    self.delete_item(table, key)
            else:
                self.put_item(table, attributes)
        raise


def install() -> None:
    """Replace moto's ``TransactWriteItems`` (idempotent)."""
    global _installed
    if _installed:
        return
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _installed = True
