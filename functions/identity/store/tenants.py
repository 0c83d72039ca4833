"""Tenants in DynamoDB. Slugs are unique through a marker item written in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions.common.dynamo import (
    conditional_write,
    from_dynamo,
    from_iso,
    is_condition_failure,
    to_dynamo,
    to_iso,
    unavailable_on_failure,
)
from functions.common.errors import ConflictError, NotFoundError
from functions.identity.models import Plan, Tenant

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_SLUG_MARKER = "slug#"


class TenantRepository:
    """Reads and writes tenants."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def create(self, tenant: Tenant) -> None:
        """Store a new tenant; ``ConflictError`` if its slug is taken."""
        client = self._table.meta.client
        item = _to_item(tenant)
        with conditional_write(
            "the tenant store", ConflictError(f"a tenant with slug '{tenant.slug}' already exists")
        ):
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": {"tenant_id": _SLUG_MARKER + tenant.slug, "owner": tenant.tenant_id},
                            "ConditionExpression": "attribute_not_exists(tenant_id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(tenant_id)",
                        }
                    },
                ]
            )

    def get(self, tenant_id: str) -> Tenant:
        """The tenant with this id; ``NotFoundError`` if there is none."""
        if tenant_id.startswith(_SLUG_MARKER):
            raise NotFoundError(f"tenant '{tenant_id}' not found")
        with unavailable_on_failure("the tenant store"):
            item = self._table.get_item(Key={"tenant_id": tenant_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise NotFoundError(f"tenant '{tenant_id}' not found")
        return _from_item(item)

    def mark_has_data(self, tenant_id: str) -> bool:
        """Record that the tenant has interactions; True only for the call that changed it."""
        try:
            with unavailable_on_failure("the tenant store"):
                self._table.update_item(
                    Key={"tenant_id": tenant_id},
                    UpdateExpression="SET has_data = :yes",
                    ConditionExpression="attribute_exists(tenant_id) AND attribute_not_exists(has_data)",
                    ExpressionAttributeValues={":yes": True},
                )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def bump_credential_generation(self, tenant_id: str) -> int:
        """Count one more credential revocation for the tenant; returns the new generation."""
        with unavailable_on_failure("the tenant store"):
            result = self._table.update_item(
                Key={"tenant_id": tenant_id},
                UpdateExpression="ADD credential_generation :one",
                ConditionExpression="attribute_exists(tenant_id)",
                ExpressionAttributeValues={":one": 1},
                ReturnValues="UPDATED_NEW",
            )
        return int(result["Attributes"]["credential_generation"])  # type: ignore[arg-type]

    def list_all(self) -> list[Tenant]:
        """Every tenant (platform admin and the scheduler; a scan is fine at tenant counts)."""
        tenants: list[Tenant] = []
        kwargs: dict[str, Any] = {}
        with unavailable_on_failure("the tenant store"):
            while True:
                page = self._table.scan(**kwargs)
                tenants.extend(
                    _from_item(item)
                    for item in page.get("Items", [])
                    if not str(item["tenant_id"]).startswith(_SLUG_MARKER)
                )
                if "LastEvaluatedKey" not in page:
                    return tenants
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _to_item(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "name": tenant.name,
        "slug": tenant.slug,
        "plan": tenant.plan.value,
        "status": tenant.status,
        "settings": to_dynamo(tenant.settings),
        "created_at": to_iso(tenant.created_at),
    }


def _from_item(item: dict[str, Any]) -> Tenant:
    return Tenant(
        tenant_id=str(item["tenant_id"]),
        name=str(item["name"]),
        slug=str(item["slug"]),
        plan=Plan(item["plan"]),
        status=str(item["status"]),
        settings=from_dynamo(dict(item.get("settings", {}))),
        created_at=from_iso(str(item["created_at"])),
        credential_generation=int(item.get("credential_generation", 0)),
        has_data=bool(item.get("has_data", False)),
    )
