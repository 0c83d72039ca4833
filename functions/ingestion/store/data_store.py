"""The tenant's raw data in S3: accepted rows as Parquet, the current catalogue, reports, drop folder."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

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
#: Bytes of a stored Parquet object sent per multipart part (S3's minimum part is 5 MiB); an object
#: smaller than one part is written with one PUT.
PART_BYTES: Final = 8 * 1024 * 1024
#: Bytes read from an S3 body at a time.
READ_BYTES: Final = 1024 * 1024


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

    def open_parquet(self, key: str, schema: pa.Schema) -> ParquetUpload:
        """Start writing one Parquet object table by table (see :class:`ParquetUpload`)."""
        return ParquetUpload(self._s3, self._bucket, key, schema)

    def open_source(self, key: str, max_bytes: int) -> Callable[[], Iterable[bytes]]:
        """A reader of one object in blocks, each call a fresh GET of the same version.

        ``NotFoundError`` if the object is gone, ``PayloadTooLargeError`` when it is larger than
        ``max_bytes`` (one HEAD, before any byte is read). A later read of a changed object fails
        (``ServiceUnavailableError``: the upload is retried on the new content).
        """
        try:
            with unavailable_on_failure("the data store"):
                head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND_CODES:
                raise NotFoundError(f"s3://{self._bucket}/{key} does not exist") from exc
            raise
        if head["ContentLength"] > max_bytes:
            raise PayloadTooLargeError(
                f"the file is larger than {max_bytes:,} bytes; split it into smaller files"
            )
        etag = head["ETag"]

        def read() -> Iterator[bytes]:
            with unavailable_on_failure("the data store"):
                body = self._s3.get_object(Bucket=self._bucket, Key=key, IfMatch=etag)["Body"]
                try:
                    while block := body.read(READ_BYTES):
                        yield block
                finally:
                    body.close()

        return read

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

    def list_objects(self, prefix: str) -> list[tuple[str, datetime]]:
        """Every key under ``prefix`` with the time it was last written."""
        found: list[tuple[str, datetime]] = []
        with unavailable_on_failure("the data store"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            ):
                found.extend((obj["Key"], obj["LastModified"]) for obj in page.get("Contents", []))
        return found

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


class ParquetUpload:
    """One Parquet object written table by table: each ``write`` adds row groups, sent to S3 in parts
    as they fill, so an upload of any size holds one part in memory. Nothing is visible under the key
    until ``finish``; ``abort`` leaves nothing behind (also after ``finish``)."""

    def __init__(self, s3: S3Client, bucket: str, key: str, schema: pa.Schema) -> None:
        self.key = key
        self.rows = 0
        self._sink = _PartSink(s3, bucket, key)
        self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd")

    def append_rows(self, table: pa.Table) -> None:
        """Append rows (written as row groups of this table) and send the parts they filled."""
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows
            self._sink.send_full_parts()

    def finish_upload(self) -> None:
        """Close the file and make the object visible."""
        self._writer.close()
        self._sink.complete_upload()

    def abort_upload(self) -> None:
        """Drop what was written (an unfinished multipart upload, or the finished object)."""
        self._sink.abort_upload()


class _PartSink(io.RawIOBase):
    """The file the Parquet writer writes into: bytes are buffered here (``write`` makes no request)
    and go to S3 part by part when the upload sends them."""

    def __init__(self, s3: S3Client, bucket: str, key: str) -> None:
        super().__init__()
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._buffer = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._completed = False

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._buffer += chunk
        self._written += len(chunk)
        return len(chunk)

    def send_full_parts(self) -> None:
        if len(self._buffer) >= PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        with unavailable_on_failure("the data store"):
            if self._upload_id is None:
                self._upload_id = self._s3.create_multipart_upload(Bucket=self._bucket, Key=self._key)[
                    "UploadId"
                ]
            number = len(self._parts) + 1
            response = self._s3.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(self._buffer),
            )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
        self._buffer.clear()

    def complete_upload(self) -> None:
        with unavailable_on_failure("the data store"):
            if self._upload_id is None:
                self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send_part()
                self._s3.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
                )
        self._buffer.clear()
        self._completed = True

    def abort_upload(self) -> None:
        with unavailable_on_failure("the data store"):
            if self._completed:
                self._s3.delete_object(Bucket=self._bucket, Key=self._key)
            elif self._upload_id is not None:
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
        self._buffer.clear()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def list_keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    """Every object key under ``prefix`` (paginated)."""
    keys: list[str] = []
    with unavailable_on_failure("the data store"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys
