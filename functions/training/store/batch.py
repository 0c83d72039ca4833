"""AWS Batch: the GPU job queue the training container runs on (``training_jobs/train.py``).

Client errors propagate unchanged: the workflow's Retry matches only ``ServiceUnavailableError`` and
Lambda's own errors, and a submission must not be retried blindly (the first one may have gone through).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

_REASON_CHARS = 1000  # what CancelJob and TerminateJob keep of a reason


@dataclass(frozen=True)
class BatchJob:
    """A Batch job as DescribeJobs reports it."""

    status: str  # SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED or FAILED
    status_reason: str | None


class TrainingJobQueue:
    """Submits training containers to one job queue and definition, follows and cancels them."""

    def __init__(self, client: BatchClient, queue: str, definition: str) -> None:
        self._client = client
        self._queue = queue
        self._definition = definition

    def enqueue(self, name: str, environment: dict[str, str], tags: dict[str, str]) -> str:
        """Submit a container with ``environment`` added to the definition's; returns the Batch job id."""
        response = self._client.submit_job(
            jobName=name,
            jobQueue=self._queue,
            jobDefinition=self._definition,
            containerOverrides={"environment": [{"name": k, "value": v} for k, v in environment.items()]},
            tags=tags,
        )
        return response["jobId"]

    def job_state(self, batch_job_id: str) -> BatchJob | None:
        """The job's state, or None once Batch no longer knows it."""
        jobs = self._client.describe_jobs(jobs=[batch_job_id])["jobs"]
        if not jobs:
            return None
        return BatchJob(status=jobs[0]["status"], status_reason=jobs[0].get("statusReason"))

    def cancel(self, batch_job_id: str, reason: str) -> None:
        """Stop the job, queued or started (``CancelJob`` removes a queued one, ``TerminateJob`` also
        stops one that started meanwhile; both are idempotent for a finished job)."""
        self._client.cancel_job(jobId=batch_job_id, reason=reason[:_REASON_CHARS])
        self._client.terminate_job(jobId=batch_job_id, reason=reason[:_REASON_CHARS])
