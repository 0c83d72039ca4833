"""Upload records: one per file or event batch, holding the validation report's summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.repositories._dynamo import get_record, to_dynamo, unavailable_on_failure

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
