"""The tenant's raw data in S3: accepted rows as Parquet, the current catalogue, reports, drop folder."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from contract.s3 import NOT_FOUND_CODES
from functions.common import resources
from functions.common.dynamo import unavailable_on_failure
from functions.common.errors import ConflictError, NotFoundError, PayloadTooLargeError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Kind = Literal["items", "interactions"]
_PRECONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412"}


class CatalogVersion:
    """The catalogue as read, with the ETag to make the next write conditional on it."""

    def __init__(self, table: pa.Table | None, etag: str | None) -> None:
        self.table = table
        self.etag = etag


class DataStore:
    """Reads and writes a tenant's objects in the data bucket. Every key is built from the tenant id."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        """The physical bucket name."""
        return self._bucket

    def put_parquet(self, key: str, table: pa.Table) -> None:
        """Write ``table`` as one Parquet object (zstd)."""
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        with unavailable_on_failure("the data store"):
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=buffer.getvalue())

    def upload_file(self, key: str, path: Path) -> None:
        """Upload a local file (multipart when large, streamed from disk: never whole in memory)."""
        with unavailable_on_failure("the data store"):
            self._s3.upload_file(str(path), self._bucket, key)

    def read_parquet(self, key: str) -> pa.Table:
        """One Parquet object as a table; ``NotFoundError`` if it is gone."""
        return pq.read_table(io.BytesIO(self.get_bytes(key)))

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` in this bucket."""
        return list_keys(self._s3, self._bucket, prefix)

    def delete(self, key: str) -> None:
        """Remove one object (used to undo a write whose bookkeeping failed)."""
        with unavailable_on_failure("the data store"):
            self._s3.delete_object(Bucket=self._bucket, Key=key)

    def read_versioned(self, key: str) -> CatalogVersion:
        """A Parquet object with its ETag (``table`` None when it does not exist yet)."""
        try:
            with unavailable_on_failure("the data store"):
                response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND_CODES:
                return CatalogVersion(None, None)
            raise
        body = response["Body"].read()
        return CatalogVersion(pq.read_table(io.BytesIO(body)), response["ETag"])

    def write_versioned(self, key: str, table: pa.Table, *, expected_etag: str | None) -> None:
        """Replace a Parquet object only if nobody changed it since it was read (``ConflictError`` if so)."""
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        body = buffer.getvalue()
        try:
            with unavailable_on_failure("the data store"):
                if expected_etag:
                    self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, IfMatch=expected_etag)
                else:  # the first version: only if nobody created one meanwhile
                    self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) in _PRECONDITION_CODES:
                raise ConflictError(f"{key} changed while it was being updated") from exc
            raise

    def etag(self, key: str) -> str | None:
        """The object's current ETag (one HEAD request), or None when it does not exist."""
        try:
            with unavailable_on_failure("the data store"):
                return self._s3.head_object(Bucket=self._bucket, Key=key)["ETag"]
        except ClientError as exc:
            if _code(exc) in NOT_FOUND_CODES:
                return None
            raise

    def read_catalog(self, tenant_id: str) -> CatalogVersion:
        """The tenant's current catalogue (``table`` None when no item was ever uploaded)."""
        current = self.read_versioned(resources.catalog_key(tenant_id))
        if current.table is not None and "available" not in current.table.column_names:
            # Catalogues written before items had an ``available`` flag: null reads as available.
            current.table = current.table.append_column(
                "available", pa.nulls(current.table.num_rows, pa.bool_())
            )
        return current

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        """Write a JSON document (reports)."""
        with unavailable_on_failure("the data store"):
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=json.dumps(document, indent=1).encode(),
                ContentType="application/json",
            )

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        """Write one object as given (the catalogue's serving view)."""
        with unavailable_on_failure("the data store"):
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        """The bytes of one object; ``NotFoundError`` if it is gone, ``PayloadTooLargeError`` when it
        is larger than ``max_bytes`` (judged by its length before any byte is read)."""
        try:
            with unavailable_on_failure("the data store"):
                response = self._s3.get_object(Bucket=self._bucket, Key=key)
                if max_bytes is not None and response["ContentLength"] > max_bytes:
                    response["Body"].close()
                    raise PayloadTooLargeError(
                        f"the file is larger than {max_bytes:,} bytes; split it into smaller files"
                    )
                return response["Body"].read()
        except ClientError as exc:
            if _code(exc) in NOT_FOUND_CODES:
                raise NotFoundError(f"s3://{self._bucket}/{key} does not exist") from exc
            raise

    def presign_drop_upload(
        self, tenant_id: str, kind: Kind, filename: str, expires_in: int
    ) -> tuple[str, str]:
        """A presigned PUT URL into the tenant's drop folder; returns (url, key)."""
        key = resources.drop_key(tenant_id, kind, filename)
        with unavailable_on_failure("the data store"):
            url = self._s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": self._bucket, "Key": key, "ContentType": "text/csv"},
                ExpiresIn=expires_in,
            )
        return url, key


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def list_keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    """Every object key under ``prefix`` (paginated)."""
    keys: list[str] = []
    with unavailable_on_failure("the data store"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys
