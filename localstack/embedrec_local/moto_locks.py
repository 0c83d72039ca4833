"""Serialise moto's DynamoDB writes, so conditional writes are atomic as they are in DynamoDB.

moto's in-memory DynamoDB evaluates a ``ConditionExpression`` and then writes the item in plain Python,
with no lock: two threads (the local stack's server threads, or a test's parallel requests) can both
pass a condition that only one of them should (measured: 32 parallel logins let more than the five
allowed attempts through). DynamoDB itself applies each conditional write atomically per item, and the
login lockout and the shared quota buckets rely on that; one lock around every write of moto's backend
restores it here. Reads are left unlocked (a read never sees a half-written item: moto replaces items
whole).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

# (BatchWriteItem goes through put_item and delete_item.)
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()
_installed = False


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(self, *args, **kwargs)

    return locked


def serialise_dynamodb_writes() -> None:
    """Wrap each write method of moto's DynamoDB backend in one process-wide lock (idempotent)."""
    global _installed
    if _installed:
        return
    for name in _WRITES:
        if hasattr(DynamoDBBackend, name):
            setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _installed = True
