"""The model registry: one item per version, the ACTIVE pointer, and the version counter.

The pointer only ever changes through one conditional write on its ``revision``, so promotion and
rollback are atomic: two writers racing cannot both win, and replaying a promotion changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from functions.common import dynamo
from functions.common.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_WHAT = "the model registry"
ACTIVE = "ACTIVE"
COUNTER = "COUNTER"
_RESERVED = {ACTIVE, COUNTER}


ModelStatus = Literal["candidate", "active", "retired", "rejected"]


class GateSummary(BaseModel):
    """The training job's gate as the registry keeps it: ``metric`` (NDCG@10) of the candidate, the
    then-active model and popularity, measured on one holdout, and the job's verdict."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "ndcg_10"
    candidate: float | None = None
    active: float | None = None
    active_version: str | None = None
    popularity: float | None = None
    promote: bool = False


class ModelVersion(BaseModel):
    """A version's registry item: EvaluateCandidate writes it; promotion, rejection and rollback update it."""

    model_config = ConfigDict(extra="forbid")

    version: str
    status: ModelStatus | None = None
    model_type: str | None = None
    #: The trainer's validation metrics (``ndcg_10`` ...) and the popularity baseline's on the same split.
    metrics: dict[str, Any] = {}
    baseline_metrics: dict[str, Any] | None = None
    gate: GateSummary | None = None
    manifest_key: str | None = None
    job_id: str | None = None
    created_at: str | None = None
    activated_at: str | None = None
    decision: str | None = None

    def changed(self, **changes: Any) -> ModelVersion:
        """This record with ``changes`` (validated)."""
        return ModelVersion.model_validate({**self.model_dump(exclude_unset=True), **changes})


def read_active_pointer(table: Table, tenant_id: str) -> ActivePointer | None:
    """The tenant's active pointer (consistent read), or None when no version was ever promoted."""
    with dynamo.unavailable_on_failure(_WHAT):
        item = table.get_item(Key={"tenant_id": tenant_id, "version": ACTIVE}, ConsistentRead=True).get(
            "Item"
        )
    return ActivePointer.from_item(item)


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
        with dynamo.unavailable_on_failure(_WHAT):
            result = self._table.update_item(
                Key={"tenant_id": tenant_id, "version": COUNTER},
                UpdateExpression="ADD #next :one",
                ExpressionAttributeNames={"#next": "next"},
                ExpressionAttributeValues={":one": 1},
                ReturnValues="UPDATED_NEW",
            )
        return f"{model_type}_v{dynamo.from_dynamo(result['Attributes']['next'])}"

    def put_version(self, tenant_id: str, record: ModelVersion) -> None:
        """Create or replace a version's record (only the attributes the record sets are stored)."""
        item = dynamo.to_dynamo(record.model_dump(exclude_unset=True))
        with dynamo.unavailable_on_failure(_WHAT):
            self._table.put_item(Item={**item, "tenant_id": tenant_id})

    def get_version(self, tenant_id: str, version: str) -> ModelVersion:
        """A version's record; ``NotFoundError`` if the tenant has no such version."""
        missing = f"model version '{version}' not found"
        if version in _RESERVED:
            raise NotFoundError(missing)
        item = dynamo.get_record(
            self._table, {"tenant_id": tenant_id, "version": version}, what=_WHAT, missing=missing
        )
        return _version(item)

    def list_versions(self, tenant_id: str) -> list[ModelVersion]:
        """Every version of the tenant, newest first."""
        versions = [
            _version(item)
            for item in dynamo.query_partition(self._table, "tenant_id", tenant_id, what=_WHAT)
            if item["version"] not in _RESERVED
        ]
        return sorted(versions, key=lambda v: v.created_at or "", reverse=True)

    def active(self, tenant_id: str) -> ActivePointer | None:
        """The active pointer, or None when no version was ever promoted."""
        return read_active_pointer(self._table, tenant_id)

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
            "updated_at": dynamo.to_iso(now),
        }
        if expected is None:
            written = dynamo.write_if(
                _WHAT,
                lambda: self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(version)"),
            )
        else:
            written = dynamo.write_if(
                _WHAT,
                lambda: self._table.put_item(
                    Item=item,
                    ConditionExpression="revision = :expected",
                    ExpressionAttributeValues={":expected": expected.revision},
                ),
            )
        if not written:
            current = self.active(tenant_id)
            if current is not None and current.version == version:
                return current  # a replay of the same promotion already won
            raise ConflictError("the active model changed meanwhile; retry")
        return ActivePointer(version, manifest_key, revision)


def _version(item: dict[str, Any]) -> ModelVersion:
    """A registry item (its key's ``tenant_id`` aside) as a record."""
    return ModelVersion.model_validate({k: v for k, v in item.items() if k != "tenant_id"})
