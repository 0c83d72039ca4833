"""Data access of the serving function: S3 objects, the registry's ACTIVE pointer, users' recent events.

Small readers over boto3 (STYLE.md rule 1); no pyarrow here (the serving layer has none), so the
shared ``functions.repositories.data_store`` is not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions.common.errors import NotFoundError, ServiceUnavailableError
from functions.repositories._dynamo import from_iso, unavailable_on_failure
from functions.serving.domain import UserEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3 import S3Client

_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
ACTIVE = "ACTIVE"


class ObjectReader:
    """Reads whole objects from one bucket."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def get_bytes(self, key: str) -> bytes:
        """The object's content; ``NotFoundError`` if absent, ``ServiceUnavailableError`` on failure."""
        try:
            with unavailable_on_failure("the object store"):
                response = self._s3.get_object(Bucket=self.bucket, Key=key)
                return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise NotFoundError(f"s3://{self.bucket}/{key} does not exist") from exc
            raise ServiceUnavailableError("the object store is unavailable, please retry") from exc

    def get_json(self, key: str) -> Any:
        """The object parsed as JSON (``ValueError`` if it is not JSON)."""
        return json.loads(self.get_bytes(key))


@dataclass(frozen=True)
class ActivePointer:
    """The registry item ``version = "ACTIVE"`` of a tenant."""

    version: str
    manifest_key: str
    revision: int


class RegistryReader:
    """Reads a tenant's ACTIVE pointer from the model registry."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def active(self, tenant_id: str) -> ActivePointer | None:
        """The live version, or None when the tenant has no active model."""
        with unavailable_on_failure("the model registry"):
            item = self._table.get_item(
                Key={"tenant_id": tenant_id, "version": ACTIVE}, ConsistentRead=True
            ).get("Item")
        if item is None or not item.get("active_version") or not item.get("manifest_key"):
            return None
        return ActivePointer(
            version=str(item["active_version"]),
            manifest_key=str(item["manifest_key"]),
            revision=int(str(item.get("revision", 0))),
        )


class RecentEventsReader:
    """A user's newest real-time events (one query, newest first)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def newest(self, tenant_id: str, user_id: str, limit: int) -> list[UserEvent]:
        """Up to ``limit`` events of the user, newest first (the sort key starts with the timestamp)."""
        with unavailable_on_failure("the event store"):
            response = self._client.query(
                TableName=self._table_name,
                KeyConditionExpression="tenant_user = :key",
                ExpressionAttributeValues={":key": {"S": f"{tenant_id}#{user_id}"}},
                ProjectionExpression="event_key, item_id, interaction_type, #ts",
                ExpressionAttributeNames={"#ts": "timestamp"},
                ScanIndexForward=False,
                Limit=limit,
            )
        events = []
        for item in response.get("Items", []):
            try:
                events.append(
                    UserEvent(
                        item_id=item["item_id"]["S"],
                        interaction_type=item["interaction_type"]["S"],
                        timestamp=from_iso(item["timestamp"]["S"]),
                        event_key=item["event_key"]["S"],
                    )
                )
            except (KeyError, ValueError):
                continue  # a malformed event is skipped, not fatal: it only personalises
        return events
