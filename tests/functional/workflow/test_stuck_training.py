"""A Batch job that never gets GPU capacity: moto runs the deployed ASL; the workflow must end.

The state machine (``training_workflow.asl.json``, executed by moto's Step Functions) polls the job,
counts the polls that still find it waiting for capacity and, at the bound, cancels it and records the
failure — instead of looping until the execution history fills up. The one stand-in is Batch's compute:
the job is held in RUNNABLE, as when the account has no GPU quota.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.batch.models import Job
from moto.batch.utils import JobStatus
from moto.core.config import default_user_config

from embedrec_local import moto_patches
from embedrec_local.provision import LocalNames, provision_compute
from functions.common.settings import get_pipeline_settings
from functions.training.handlers import pipeline_context
from tests.conftest import REGION
from tests.functional.conftest import Shop
from tests.functional.workflow.test_steps import ITEMS, _upload

_DONE = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def _held_in_runnable(self: Job) -> None:
    """``Job.run`` of a queue without capacity: RUNNABLE until cancelled or terminated."""
    for waiting in (JobStatus.SUBMITTED, JobStatus.PENDING):
        self.advance()
        while self.status == waiting and not self.stop:
            time.sleep(0.05)
    while not self.stop:
        time.sleep(0.05)
    self._mark_stopped(success=False)


@pytest.fixture
def executing_workflow(aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto executes the state machine; its Lambda tasks run in-process; Batch never has capacity."""
    moto_patches.install()
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    provision_compute(REGION, aws_env)  # the state machine, in the backend that executes it
    monkeypatch.setattr(Job, "run", _held_in_runnable)
    monkeypatch.setenv("EMBEDREC_TRAINING_POLL_SECONDS", "1")
    monkeypatch.setenv("EMBEDREC_TRAINING_MAX_QUEUED_SECONDS", "3")  # three polls
    get_pipeline_settings.cache_clear()
    pipeline_context.cache_clear()
    yield
    get_pipeline_settings.cache_clear()
    pipeline_context.cache_clear()


def _finished(execution_arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    for _ in range(600):  # a bound on the loop, not a timed assertion
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in _DONE:
            return dict(described)
        time.sleep(0.1)
    raise AssertionError(f"the execution did not finish: {described['status']}")


def test_a_job_stuck_in_runnable_is_cancelled_and_the_failure_recorded(
    client: TestClient, shop: Shop, executing_workflow: None
) -> None:
    # Given a tenant with data, whose training job will never leave RUNNABLE
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    _upload(
        client,
        shop,
        [(f"u{u}", f"item_{(u + k) % 6}", "view", 7 * k + u) for u in range(4) for k in range(4)],
    )
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]

    # When a scheduled run starts the workflow
    started = sfn.start_execution(
        stateMachineArn=machine, input=f'{{"tenant_id": "{shop.tenant_id}", "trigger": "schedule"}}'
    )
    finished = _finished(started["executionArn"])

    # Then it ends (FAILED, not looping) after cancelling the job, and the job record says why
    assert finished["status"] == "FAILED"
    events = sfn.get_execution_history(executionArn=started["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered[-3:] == ["CancelTraining", "RecordFailure", "Failed"]
    assert entered.count("CheckTraining") == 3
    (job,) = [
        record
        for record in pipeline_context().jobs.list_for_tenant(shop.tenant_id)
        if record.job_id.startswith("job_")
    ]
    assert job.status == "failed"
    assert job.error is not None and "TrainingStuck" in job.error and "RUNNABLE" in job.error
    status = client.get(f"/api/admin/training/status/{job.job_id}", headers=shop.auth).json()
    assert status["status"] == "failed"
    (batch_job,) = boto3.client("batch").describe_jobs(jobs=[str(job.batch_job_id)])["jobs"]
    assert batch_job["status"] == "FAILED" and "RUNNABLE" in batch_job["statusReason"]
    # And the tenant's training lock is free again: the next trigger is accepted
    assert client.post("/api/admin/training/trigger", headers=shop.auth, json={}).status_code == 202
