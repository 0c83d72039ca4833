"""The model registry: one item per version, the ACTIVE pointer, and the version counter.

The pointer only ever changes through one conditional write on its ``revision``, so promotion and
rollback are atomic: two writers racing cannot both win, and replaying a promotion changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions.common.dynamo import (
    from_dynamo,
    get_record,
    is_condition_failure,
    query_partition,
    to_dynamo,
    to_iso,
    unavailable_on_failure,
)
from functions.common.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_WHAT = "the model registry"
ACTIVE = "ACTIVE"
COUNTER = "COUNTER"
_RESERVED = {ACTIVE, COUNTER}


@dataclass(frozen=True)
class ActivePointer:
    """Which version serves a tenant: the registry item ``version = "ACTIVE"`` (serving reads it too)."""

    version: str
    manifest_key: str
    revision: int

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> ActivePointer | None:
        """The pointer an item holds; None for no item, or one that names no version or manifest."""
        if item is None or not item.get("active_version") or not item.get("manifest_key"):
            return None
        return cls(str(item["active_version"]), str(item["manifest_key"]), int(str(item.get("revision", 0))))


class ModelRegistry:
    """Reads and writes a tenant's model versions and the active pointer."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def next_version(self, tenant_id: str, model_type: str) -> str:
        """Allocate the next version name, ``{model_type}_v{n}`` (n counts up per tenant)."""
        with unavailable_on_failure("the model registry"):
            result = self._table.update_item(
                Key={"tenant_id": tenant_id, "version": COUNTER},
                UpdateExpression="ADD #next :one",
                ExpressionAttributeNames={"#next": "next"},
                ExpressionAttributeValues={":one": 1},
                ReturnValues="UPDATED_NEW",
            )
        return f"{model_type}_v{from_dynamo(result['Attributes']['next'])}"

    def put_version(self, tenant_id: str, version: str, record: dict[str, Any]) -> None:
        """Create or update a version's record."""
        with unavailable_on_failure("the model registry"):
            self._table.put_item(Item={**to_dynamo(record), "tenant_id": tenant_id, "version": version})

    def get_version(self, tenant_id: str, version: str) -> dict[str, Any]:
        """A version's record; ``NotFoundError`` if the tenant has no such version."""
        missing = f"model version '{version}' not found"
        if version in _RESERVED:
            raise NotFoundError(missing)
        return get_record(
            self._table, {"tenant_id": tenant_id, "version": version}, what=_WHAT, missing=missing
        )

    def list_versions(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every version of the tenant, newest first."""
        versions = [
            v
            for v in query_partition(self._table, "tenant_id", tenant_id, what=_WHAT)
            if v["version"] not in _RESERVED
        ]
        return sorted(versions, key=lambda v: str(v.get("created_at", "")), reverse=True)

    def active(self, tenant_id: str) -> ActivePointer | None:
        """The active pointer, or None when no version was ever promoted."""
        with unavailable_on_failure("the model registry"):
            item = self._table.get_item(
                Key={"tenant_id": tenant_id, "version": ACTIVE}, ConsistentRead=True
            ).get("Item")
        return ActivePointer.from_item(item)

    def switch_active(
        self,
        tenant_id: str,
        version: str,
        manifest_key: str,
        *,
        expected: ActivePointer | None,
        now: datetime,
    ) -> ActivePointer:
        """Point the tenant at ``version`` if the pointer is still ``expected`` (one conditional write).

        Re-pointing at the version that is already active succeeds without a write (idempotent).
        """
        if expected is not None and expected.version == version:
            return expected
        revision = 1 if expected is None else expected.revision + 1
        item: dict[str, Any] = {
            "tenant_id": tenant_id,
            "version": ACTIVE,
            "active_version": version,
            "manifest_key": manifest_key,
            "revision": revision,
            "updated_at": to_iso(now),
        }
        try:
            with unavailable_on_failure("the model registry"):
                if expected is None:
                    self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(version)")
                else:
                    self._table.put_item(
                        Item=item,
                        ConditionExpression="revision = :expected",
                        ExpressionAttributeValues={":expected": expected.revision},
                    )
        except ClientError as exc:
            if is_condition_failure(exc):
                current = self.active(tenant_id)
                if current is not None and current.version == version:
                    return current  # a replay of the same promotion already won
                raise ConflictError("the active model changed meanwhile; retry") from exc
            raise
        return ActivePointer(version, manifest_key, revision)
