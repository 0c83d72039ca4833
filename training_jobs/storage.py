"""Data access: S3 objects and the DynamoDB training-job record (boto3 behind small classes).

The record's fields are the contract's (``contract.training_job``): every update is checked against them.

boto3 picks the endpoint from ``AWS_ENDPOINT_URL`` (the local stack points it at moto); nothing here
hard-codes one. DynamoDB numbers are written as ``Decimal``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from contract.s3 import NOT_FOUND_CODES
from contract.training_job import job_changes
from training_jobs.errors import ArtifactError, DatasetError


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> (bucket, key prefix)."""
    if not uri.startswith("s3://"):
        raise DatasetError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise DatasetError(f"S3 URI without a bucket: {uri}")
    return bucket, key


class S3ObjectStore:
    """Reads and writes whole objects."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_bytes(self, bucket: str, key: str) -> bytes:
        """The object's content; a missing object raises :class:`DatasetError`."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
            return bytes(response["Body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise DatasetError(f"cannot read s3://{bucket}/{key} ({code or exc})") from exc
        except BotoCoreError as exc:
            raise DatasetError(f"cannot read s3://{bucket}/{key} ({exc})") from exc

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a listing, so a missing object reads as absent with a prefix grant)."""
        keys: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise DatasetError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
        return keys

    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists."""
        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return False
            raise ArtifactError(f"cannot check s3://{bucket}/{key}: {exc}") from exc
        return True

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Write the object."""
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"cannot write s3://{bucket}/{key}: {exc}") from exc

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        """Upload a local file (multipart above boto3's threshold: never the whole object in memory)."""
        try:
            self._client.upload_file(str(path), bucket, key)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise ArtifactError(f"cannot write s3://{bucket}/{key}: {exc}") from exc

    def get_file(self, bucket: str, key: str, path: Path) -> None:
        """Download the object to a local file (streamed, not held in memory)."""
        try:
            self._client.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise DatasetError(f"cannot read s3://{bucket}/{key} ({exc})") from exc

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object (best effort clean-up of a failed publish)."""
        try:
            self._client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"cannot delete s3://{bucket}/{key}: {exc}") from exc


def to_dynamo(value: Any) -> Any:
    """Convert floats to ``Decimal`` (non-finite floats to None) recursively, for DynamoDB."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int | Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(round(value, 6))) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): to_dynamo(item) for key, item in value.items() if to_dynamo(item) is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(item) for item in value]
    return str(value)


def utc_now() -> str:
    """Current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TrainingJobRepository:
    """The training-job record (key ``tenant_id`` + ``job_id``), updated in place as the job runs."""

    def __init__(self, table: Any, tenant_id: str, job_id: str) -> None:
        self._table = table
        self._key = {"tenant_id": tenant_id, "job_id": job_id}

    def _update(self, fields: Mapping[str, Any], remove: tuple[str, ...] = ()) -> None:
        values = {key: to_dynamo(value) for key, value in job_changes(dict(fields)).items()}
        names = {f"#f{index}": key for index, key in enumerate(values)}
        expression = "SET " + ", ".join(f"#f{index} = :v{index}" for index in range(len(values)))
        if remove:
            job_changes(dict.fromkeys(remove))  # only the record's own fields are removed
            removal = {f"#r{index}": key for index, key in enumerate(remove)}
            names.update(removal)
            expression += " REMOVE " + ", ".join(removal)
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    f":v{index}": value for index, value in enumerate(values.values())
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"cannot update training job record {self._key}: {exc}") from exc

    def mark_running(self, total_epochs: int) -> None:
        """Job started: status running, progress 0."""
        now = utc_now()
        self._update(
            {
                "status": "running",
                "progress": 0,
                "current_epoch": 0,
                "total_epochs": total_epochs,
                "started_at": now,
                "updated_at": now,
                "metrics": {},
            },
            remove=("error",),
        )

    def record_epoch(
        self, epoch: int, total_epochs: int, progress: int, metrics: Mapping[str, float]
    ) -> None:
        """After an epoch: progress %, epoch counters and the latest metrics."""
        self._update(
            {
                "status": "running",
                "progress": progress,
                "current_epoch": epoch,
                "total_epochs": total_epochs,
                "metrics": dict(metrics),
                "updated_at": utc_now(),
            }
        )

    def mark_completed(
        self,
        model_version: str,
        artifacts_prefix: str,
        metrics: Mapping[str, float],
        epochs_run: int,
        decision: str | None = None,
    ) -> None:
        """Success: final metrics, where the artifacts are and the promotion gate's verdict."""
        now = utc_now()
        extra = {"decision": decision} if decision else {}
        self._update(
            {
                **extra,
                "status": "completed",
                "progress": 100,
                "current_epoch": epochs_run,
                "metrics": dict(metrics),
                "model_version": model_version,
                "artifacts_prefix": artifacts_prefix,
                "completed_at": now,
                "updated_at": now,
            }
        )

    def mark_failed(self, message: str) -> None:
        """Failure: status failed with the message."""
        now = utc_now()
        self._update({"status": "failed", "error": message[:2000], "failed_at": now, "updated_at": now})
