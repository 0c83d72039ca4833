"""A/B test records, and the per-tenant ``#RUNNING`` pointer that allows one running test at a time.

The pointer is taken with a conditional put (free, or held by a test whose duration has passed), so
two concurrent creations cannot both start a test. It carries the running test's whole definition,
so serving's per-request lookup is a single GetItem, and is cached in the container for a few
seconds (a stop reaches every serving container within ``cache_ttl_s``).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from functions.analytics.domain import AbTest, Variant
from functions.common import dynamo
from functions.common.errors import ConflictError, NotFoundError, ServiceUnavailableError
from functions.common.in_flight import InFlight

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

RUNNING = "#RUNNING"  # the pointer's test_id; no real test id starts with '#'
_WHAT = "the A/B test store"


class AbTestRepository:
    """Reads and writes a tenant's A/B tests."""

    def __init__(self, table: Table, *, cache_ttl_s: float = 0.0) -> None:
        self._table = table
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, AbTest | None]] = {}
        self._lock = threading.Lock()
        self._reading = InFlight()  # tenants whose pointer one request is re-reading

    def create(self, tenant_id: str, test: AbTest, now: datetime) -> None:
        """Store a new running test; ``ConflictError`` naming the test that still runs, if one does."""
        taken = dynamo.write_if(
            _WHAT,
            lambda: self._table.put_item(
                Item={
                    "tenant_id": tenant_id,
                    "test_id": RUNNING,
                    "current": test.test_id,
                    "ends_epoch": int(test.ends_at.timestamp()),
                    "test": _to_item(test),
                },
                ConditionExpression="attribute_not_exists(test_id) OR ends_epoch <= :now",
                ExpressionAttributeValues={":now": int(now.timestamp())},
            ),
        )
        if not taken:
            holder = self._pointer(tenant_id)
            current = holder.test_id if holder is not None else "?"
            raise ConflictError(f"A/B test '{current}' is still running; stop it first")
        try:
            with dynamo.unavailable_on_failure(_WHAT):
                self._table.put_item(Item={**_to_item(test), "tenant_id": tenant_id})
        except ServiceUnavailableError:
            self._release(tenant_id, test.test_id)
            raise
        self._forget(tenant_id)

    def get(self, tenant_id: str, test_id: str) -> AbTest:
        """One test of the tenant; ``NotFoundError`` otherwise (another tenant's test looks the same)."""
        if test_id == RUNNING:
            raise NotFoundError(f"A/B test '{test_id}' not found")
        item = dynamo.get_record(
            self._table,
            {"tenant_id": tenant_id, "test_id": test_id},
            what=_WHAT,
            missing=f"A/B test '{test_id}' not found",
        )
        return _from_item(item)

    def list_tests(self, tenant_id: str) -> list[AbTest]:
        """Every test of the tenant, newest first."""
        items = dynamo.query_partition(self._table, "tenant_id", tenant_id, what=_WHAT)
        tests = [_from_item(item) for item in items if item["test_id"] != RUNNING]
        return sorted(tests, key=lambda test: (test.created_at, test.test_id), reverse=True)

    def stop(self, tenant_id: str, test_id: str, now: datetime) -> AbTest:
        """Stop a test (idempotent: stopping a stopped test changes nothing) and free the pointer."""
        test = self.get(tenant_id, test_id)
        if test.stopped_at is None:
            dynamo.write_if(  # already stopped meanwhile: the first stop stands
                _WHAT,
                lambda: self._table.update_item(
                    Key={"tenant_id": tenant_id, "test_id": test_id},
                    UpdateExpression="SET stopped_at = :now",
                    ConditionExpression="attribute_not_exists(stopped_at)",
                    ExpressionAttributeValues={":now": dynamo.to_iso(now)},
                ),
            )
            test = self.get(tenant_id, test_id)
        self._release(tenant_id, test_id)
        return test

    def running(self, tenant_id: str, now: datetime) -> AbTest | None:
        """The test that assigns users at ``now``, if any (cached for ``cache_ttl_s``)."""
        clock = time.monotonic()
        with self._lock:
            cached = self._cache.get(tenant_id)
        # Past its ttl, the cached answer still serves while ONE request re-reads the pointer.
        if cached is None or (clock - cached[0] >= self._cache_ttl_s and self._reading.claim(tenant_id)):
            with self._reading.reading(tenant_id):
                test = self._pointer(tenant_id)
            with self._lock:
                self._cache[tenant_id] = (clock, test)
        else:
            test = cached[1]
        return test if test is not None and test.is_running(now) else None

    def _pointer(self, tenant_id: str) -> AbTest | None:
        with dynamo.unavailable_on_failure(_WHAT):
            item = self._table.get_item(Key={"tenant_id": tenant_id, "test_id": RUNNING}).get("Item")
        if item is None or "test" not in item:
            return None
        return _from_item(dynamo.from_dynamo(item["test"]))

    def _release(self, tenant_id: str, test_id: str) -> None:
        """Free the pointer if ``test_id`` holds it."""
        dynamo.release_if_held(
            self._table,
            {"tenant_id": tenant_id, "test_id": RUNNING},
            holder_attribute="current",
            holder=test_id,
            what=_WHAT,
        )
        self._forget(tenant_id)

    def _forget(self, tenant_id: str) -> None:
        with self._lock:
            self._cache.pop(tenant_id, None)


def _to_item(test: AbTest) -> dict[str, Any]:
    item: dict[str, Any] = {
        "test_id": test.test_id,
        "name": test.name,
        "variants": [
            {"id": v.id, "model_version": v.model_version, "traffic": v.traffic} for v in test.variants
        ],
        "metric": test.metric,
        "duration_days": test.duration_days,
        "created_at": dynamo.to_iso(test.created_at),
        "started_at": dynamo.to_iso(test.started_at),
        "ends_at": dynamo.to_iso(test.ends_at),
    }
    if test.stopped_at is not None:
        item["stopped_at"] = dynamo.to_iso(test.stopped_at)
    result: dict[str, Any] = dynamo.to_dynamo(item)
    return result


def _from_item(item: dict[str, Any]) -> AbTest:
    return AbTest(
        test_id=str(item["test_id"]),
        name=str(item["name"]),
        variants=tuple(
            Variant(id=str(v["id"]), model_version=str(v["model_version"]), traffic=int(v["traffic"]))
            for v in item["variants"]
        ),
        metric=item["metric"],
        duration_days=int(item["duration_days"]),
        created_at=dynamo.from_iso(str(item["created_at"])),
        started_at=dynamo.from_iso(str(item["started_at"])),
        ends_at=dynamo.from_iso(str(item["ends_at"])),
        stopped_at=dynamo.from_iso(str(item["stopped_at"])) if item.get("stopped_at") else None,
    )
