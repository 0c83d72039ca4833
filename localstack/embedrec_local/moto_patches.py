"""Swap moto's compute substrates (which need Docker) for local ones; every control plane stays moto's.

- Lambda: an invocation runs the function's registered handler string in-process (``LambdaRunner``),
  and a raised exception becomes Lambda's error payload (``errorType`` = class name), which Step
  Functions' Retry/Catch match exactly as in AWS.
- DynamoDB: ``TransactWriteItems`` costs the items it names, not a copy of each table
  (``embedrec_local.moto_dynamodb``).
- SQS: a queue's counts read the clock once, not once per message (``embedrec_local.moto_sqs``).
- Batch: a submitted job runs its container command as a local subprocess (CPU, or a GPU if present)
  with the job definition's and the submission's environment, and its exit code decides the status.

These touch moto internals (pinned to 5.1/5.2 in pyproject.toml); ``tests/functional/workflow`` and the
integration tier exercise both, so a moto upgrade that breaks them fails loudly.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.batch.models import Job
from moto.batch.utils import JobStatus

from embedrec_local import moto_dynamodb, moto_sqs
from embedrec_local.lambda_runtime.container import InvocationError
from embedrec_local.lambda_runtime.local import (
    DEFINITIONS_ENV,
    fleet_from_environment,
    read_definitions,
    require_python,
)
from embedrec_local.lambda_runtime.pool import LambdaFleet
from embedrec_local.moto_locks import serialise_dynamodb_writes
from embedrec_local.runner import LambdaRunner

log = logging.getLogger("embedrec.local.moto")
_runner = LambdaRunner()
_installed = False
_LOG_TAIL = 2000  # characters of a failed job's output kept as its status reason


_fleet: LambdaFleet | None = None
_fleet_lock = threading.Lock()


def _lambda_fleet() -> LambdaFleet | None:
    """The container fleet when the stack runs ``--runtime lambda`` (created at the first invocation)."""
    global _fleet
    path = os.environ.get(DEFINITIONS_ENV)
    if not path:
        return None
    with _fleet_lock:
        if _fleet is None:
            _fleet = fleet_from_environment(read_definitions(Path(path)), require_python(), dict(os.environ))
        return _fleet


def close_fleet() -> None:
    """Kill the containers this process started (the moto server is stopping)."""
    with _fleet_lock:
        if _fleet is not None:
            _fleet.close()


def _invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replacement of ``LambdaFunction._invoke_lambda``: run the handler string here (or in a container)."""
    payload = event if isinstance(event, dict) else json.loads(event or "{}")
    fleet = _lambda_fleet()
    if fleet is not None:
        try:
            return json.dumps(fleet.invoke(str(self.function_name), payload)), False, ""
        except InvocationError as exc:
            log.warning("Lambda %s failed: %s", self.function_name, exc)
            return json.dumps(exc.error), True, str(exc)
    try:
        result = _runner.invoke_handler(str(self.handler), str(self.function_name), payload)
    except Exception as exc:  # Lambda turns any exception into an error payload; so do we
        log.warning("local Lambda %s raised %s: %s", self.function_name, type(exc).__name__, exc)
        error = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-5:],
        }
        return json.dumps(error), True, traceback.format_exc()
    return json.dumps(result), False, ""


def _local_command(command: list[str]) -> list[str]:
    """The container's command for this machine: its ``python`` is the interpreter running us."""
    return [sys.executable if part in ("python", "python3") else part for part in command]


def _run_locally(self: Job) -> None:
    """Replacement of ``Job.run``: walk the job through Batch's states and run it as a subprocess."""
    try:
        for waiting in (JobStatus.SUBMITTED, JobStatus.PENDING, JobStatus.RUNNABLE, JobStatus.STARTING):
            self.advance()
            while self.status == waiting:
                time.sleep(0.1)
        self.job_started_at = datetime.now()
        self._start_attempt()
        command = _local_command(self._add_parameters_to_command(self._get_container_property("command", [])))
        environment = {
            item["name"]: item["value"] for item in self._get_container_property("environment", [])
        }
        process = subprocess.Popen(
            command,
            env={**os.environ, **environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        while process.poll() is None:
            if self.stop:
                process.terminate()
                process.wait(timeout=30)
                break
            time.sleep(0.2)
        output = process.stdout.read() if process.stdout else ""
        self.exit_code = process.returncode
        if process.returncode != 0 and not self.job_stopped_reason:
            self.job_stopped_reason = (
                f"Essential container in task exited (code {process.returncode}): {output[-_LOG_TAIL:]}"
            )
        log.info("local Batch job %s exited with %s", self.job_name, process.returncode)
        self._mark_stopped(success=process.returncode == 0 and not self.stop)
    except (OSError, subprocess.SubprocessError) as exc:
        self.job_stopped_reason = f"the local training process could not run: {exc}"
        self._mark_stopped(success=False)


def install() -> None:
    """Apply both patches (idempotent), and make moto's conditional writes atomic (``moto_locks``)."""
    global _installed
    if _installed:
        return
    moto_dynamodb.install()  # first: the write lock below then wraps its transactions too
    moto_sqs.install()
    serialise_dynamodb_writes()
    LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign]
    Job.run = _run_locally  # type: ignore[method-assign]
    _installed = True
