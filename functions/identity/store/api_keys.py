"""API keys in DynamoDB: the hash and a display prefix only. Lookup by hash through an index."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key

from functions.common.dynamo import (
    conditional_write,
    from_iso,
    query_partition,
    to_iso,
    unavailable_on_failure,
)
from functions.common.errors import NotFoundError
from functions.identity.models import ApiKey, Permission

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_BY_HASH = "by_hash"


class ApiKeyRepository:
    """Reads and writes a tenant's API keys."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def create(self, key: ApiKey) -> None:
        """Store a new key."""
        with unavailable_on_failure("the API key store"):
            self._table.put_item(
                Item={
                    "tenant_id": key.tenant_id,
                    "key_id": key.key_id,
                    "name": key.name,
                    "key_prefix": key.key_prefix,
                    "key_hash": key.key_hash,
                    "permissions": sorted(p.value for p in key.permissions),
                    "status": key.status,
                    "created_at": to_iso(key.created_at),
                },
                ConditionExpression="attribute_not_exists(key_id)",
            )

    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]:
        """Every key of ``tenant_id``, newest first."""
        items = query_partition(self._table, "tenant_id", tenant_id, what="the API key store")
        return sorted((_from_item(item) for item in items), key=lambda key: key.created_at, reverse=True)

    def find_by_hash(self, key_hash: str) -> ApiKey:
        """The key whose hash is ``key_hash``; ``NotFoundError`` if none."""
        with unavailable_on_failure("the API key store"):
            items = self._table.query(IndexName=_BY_HASH, KeyConditionExpression=Key("key_hash").eq(key_hash))
        found = items.get("Items", [])
        if not found:
            raise NotFoundError("unknown API key")
        return _from_item(found[0])

    def revoke(self, tenant_id: str, key_id: str, when: datetime) -> ApiKey:
        """Mark a key revoked; ``NotFoundError`` if the tenant has no such key. Idempotent."""
        with conditional_write("the API key store", NotFoundError(f"API key '{key_id}' not found")):
            result = self._table.update_item(
                Key={"tenant_id": tenant_id, "key_id": key_id},
                UpdateExpression="SET #status = :revoked, revoked_at = if_not_exists(revoked_at, :when)",
                ConditionExpression="attribute_exists(key_id)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":revoked": "revoked", ":when": to_iso(when)},
                ReturnValues="ALL_NEW",
            )
        return _from_item(result["Attributes"])


def _from_item(item: dict[str, Any]) -> ApiKey:
    revoked_at = item.get("revoked_at")
    return ApiKey(
        key_id=str(item["key_id"]),
        tenant_id=str(item["tenant_id"]),
        name=str(item["name"]),
        key_prefix=str(item["key_prefix"]),
        key_hash=str(item["key_hash"]),
        permissions=frozenset(Permission(p) for p in item.get("permissions", [])),
        status=str(item["status"]),
        created_at=from_iso(str(item["created_at"])),
        revoked_at=from_iso(str(revoked_at)) if revoked_at else None,
    )
