"""Training-job records (``contract.training_job``), and the per-tenant lock that allows one running job
at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from contract.training_job import TrainingJobFields, TrainingJobRecord
from functions.common import dynamo
from functions.common.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_WHAT = "the training-job store"
LOCK = "#RUNNING"  # the lock's job_id; no real job id starts with '#'


class TrainingJobRepository:
    """Reads and writes a tenant's training jobs."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def acquire_lock(self, tenant_id: str, job_id: str, now: datetime, max_age: timedelta) -> None:
        """Take the tenant's training lock; ``ConflictError`` naming the running job if it is held.

        A lock older than ``max_age`` belongs to a job that died without releasing it and is taken over.
        """
        taken = dynamo.write_if(
            _WHAT,
            lambda: self._table.put_item(
                Item={
                    "tenant_id": tenant_id,
                    "job_id": LOCK,
                    "holder": job_id,
                    "since": dynamo.to_iso(now),
                    "expires": int((now + max_age).timestamp()),
                },
                ConditionExpression="attribute_not_exists(job_id) OR expires < :now",
                ExpressionAttributeValues={":now": int(now.timestamp())},
            ),
        )
        if not taken:
            holder = self._table.get_item(Key={"tenant_id": tenant_id, "job_id": LOCK}).get("Item", {})
            raise ConflictError(
                f"training job '{dynamo.from_dynamo(holder.get('holder', '?'))}' is still running for "
                "this tenant; wait for it to finish"
            )

    def release_lock(self, tenant_id: str, job_id: str) -> None:
        """Release the lock if ``job_id`` holds it (idempotent)."""
        dynamo.release_if_held(
            self._table,
            {"tenant_id": tenant_id, "job_id": LOCK},
            holder_attribute="holder",
            holder=job_id,
            what=_WHAT,
        )

    def create(self, record: TrainingJobRecord) -> None:
        """Store a new job record."""
        with dynamo.unavailable_on_failure(_WHAT):
            self._table.put_item(
                Item=dynamo.to_dynamo(record.item()),
                ConditionExpression="attribute_not_exists(job_id)",
            )

    def update(self, tenant_id: str, job_id: str, fields: TrainingJobFields) -> None:
        """Set the attributes ``fields`` sets on an existing job record."""
        changes = fields.item()
        names = {f"#a{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": dynamo.to_dynamo(value) for i, value in enumerate(changes.values())}
        expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changes)))
        updated = dynamo.write_if(
            _WHAT,
            lambda: self._table.update_item(
                Key={"tenant_id": tenant_id, "job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(job_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            ),
        )
        if not updated:
            raise NotFoundError(f"training job '{job_id}' not found")

    def get(self, tenant_id: str, job_id: str) -> TrainingJobRecord:
        """One job of this tenant; ``NotFoundError`` if there is none."""
        missing = f"training job '{job_id}' not found"
        if job_id.startswith("#"):
            raise NotFoundError(missing)
        item = dynamo.get_record(
            self._table, {"tenant_id": tenant_id, "job_id": job_id}, what=_WHAT, missing=missing
        )
        return TrainingJobRecord.model_validate(item)

    def list_for_tenant(self, tenant_id: str) -> list[TrainingJobRecord]:
        """Every job of the tenant (newest first)."""
        jobs = [
            TrainingJobRecord.model_validate(item)
            for item in dynamo.query_partition(self._table, "tenant_id", tenant_id, what=_WHAT)
            if item["job_id"] != LOCK
        ]
        return sorted(jobs, key=lambda job: job.created_at or "", reverse=True)
