"""Upload records: one per file or event batch, holding the validation report's summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from functions.common.errors import ServiceUnavailableError
from functions.repositories._dynamo import get_record, to_dynamo, unavailable_on_failure

_BATCH_GET = 100

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class UploadRepository:
    """Reads and writes a tenant's upload records."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, tenant_id: str, upload_id: str, record: dict[str, Any]) -> None:
        """Store (or replace) the record of one upload."""
        with unavailable_on_failure("the upload store"):
            self._table.put_item(Item={**to_dynamo(record), "tenant_id": tenant_id, "upload_id": upload_id})

    def get(self, tenant_id: str, upload_id: str) -> dict[str, Any]:
        """The record of one upload of this tenant; ``NotFoundError`` if there is none."""
        return get_record(
            self._table,
            {"tenant_id": tenant_id, "upload_id": upload_id},
            what="the upload store",
            missing=f"upload '{upload_id}' not found",
        )

    def committed(self, tenant_id: str, upload_ids: Iterable[str]) -> set[str]:
        """Which of ``upload_ids`` have their record, i.e. finished (BatchGetItem, 100 keys a call)."""
        wanted = sorted(set(upload_ids))
        found: set[str] = set()
        client = self._table.meta.client
        for start in range(0, len(wanted), _BATCH_GET):
            keys: Any = [{"tenant_id": tenant_id, "upload_id": u} for u in wanted[start : start + _BATCH_GET]]
            request: Any = {self._table.name: {"Keys": keys, "ProjectionExpression": "upload_id"}}
            for _attempt in range(5):
                with unavailable_on_failure("the upload store"):
                    response = client.batch_get_item(RequestItems=request)
                found.update(
                    str(item["upload_id"]) for item in response["Responses"].get(self._table.name, [])
                )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise ServiceUnavailableError("the upload store is throttling, please retry")
        return found
