"""The embedded local stack: moto on loopback, resources provisioned from the shared specs,
in-process Lambda invocations, and both FastAPI apps on one port.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal

import httpx

from embedrec_local.drop_folder import DropFolderPoller
from embedrec_local.event_sources import (
    SqsEventSource,
    drain_before_api,
    events_event_source,
    impressions_event_source,
)
from embedrec_local.provision import LocalNames, compute_environment, provision, provision_compute
from embedrec_local.runner import Invoker, LambdaRunner
from functions.common import deployment

if TYPE_CHECKING:
    from embedrec_local.lambda_runtime.pool import LambdaFleet

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
_READY_TIMEOUT_S = 30.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class StackConfig:
    """How to run the local stack. Secrets are generated when not given."""

    port: int = 8000
    moto_port: int = 0
    admin_key: str = field(default_factory=lambda: os.environ.get("EMBEDREC_ADMIN_KEY") or _new_admin_key())
    jwt_secret: str = field(
        default_factory=lambda: os.environ.get("EMBEDREC_JWT_SECRET") or secrets.token_hex(32)
    )
    names: LocalNames = field(default_factory=LocalNames)
    training_poll_seconds: int = 2
    moto_logs: bool = bool(os.environ.get("EMBEDREC_MOTO_LOGS"))
    # "inprocess": both apps in this process (fast; the functional default). "lambda": every function
    # in emulated Lambda containers from its built bundle (embedrec_local.lambda_runtime).
    runtime: Literal["inprocess", "lambda"] = "inprocess"


Runtime = Literal["inprocess", "lambda"]
RUNTIMES: tuple[Runtime, ...] = ("inprocess", "lambda")


def _new_admin_key() -> str:
    return "adm_" + secrets.token_urlsafe(24)


class EmbeddedStack:
    """Start, provision and stop the local stack. Use as a context manager or call start/stop."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.runner: Invoker = LambdaRunner()
        self.fleet: LambdaFleet | None = None
        self._definitions_file: Path | None = None
        self._moto: subprocess.Popen[bytes] | None = None
        self._poller: DropFolderPoller | None = None
        self.impressions: SqsEventSource | None = None
        self.events: SqsEventSource | None = None
        self.moto_endpoint = ""

    @property
    def api_url(self) -> str:
        """Where the API listens."""
        return f"http://{LOOPBACK}:{self.config.port}"

    def environment(self) -> dict[str, str]:
        """What a function container sees locally (the CDK app sets the same names in AWS)."""
        return {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's fixed credentials
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "EMBEDREC_ADMIN_KEY": self.config.admin_key,
            "EMBEDREC_JWT_SECRET": self.config.jwt_secret,
            "POWERTOOLS_SERVICE_NAME": "embedrec-local",
            "POWERTOOLS_METRICS_NAMESPACE": "embedrec",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            "EMBEDREC_TRAINING_POLL_SECONDS": str(self.config.training_poll_seconds),
            # Locally a promotion should show within seconds; in AWS the default is 30 s.
            "EMBEDREC_MODEL_REFRESH_SECONDS": os.environ.get("EMBEDREC_MODEL_REFRESH_SECONDS", "2"),
            **self.config.names.environment(),
            **compute_environment(self.config.names, REGION),
        }

    def start(self) -> None:
        """Start moto, provision every resource and start the drop-folder delivery."""
        moto_port = self.config.moto_port or free_port()
        self.moto_endpoint = f"http://{LOOPBACK}:{moto_port}"
        moto_env = {**os.environ, **self.environment(), "MOTO_PORT": str(moto_port)}
        python = ""
        if self.config.runtime == "lambda":
            from embedrec_local.lambda_runtime.local import DEFINITIONS_ENV, require_python

            python = require_python()
            # Written once the secrets exist (below); the moto process reads it at its first invocation.
            handle, name = tempfile.mkstemp(prefix="embedrec-lambda-", suffix=".json")
            os.close(handle)
            self._definitions_file = Path(name)
            moto_env[DEFINITIONS_ENV] = name
        # The moto process runs the Lambda handlers and spawns training jobs: it gets the functions' env.
        self._moto = subprocess.Popen(
            [sys.executable, "-m", "embedrec_local.moto_server", "-H", LOOPBACK, "-p", str(moto_port)],
            env=moto_env,
            stdout=subprocess.DEVNULL if not self.config.moto_logs else None,
            stderr=subprocess.DEVNULL if not self.config.moto_logs else None,
        )
        self._wait_for_moto()
        httpx.post(
            f"{self.moto_endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=5,
        ).raise_for_status()
        os.environ.update(self.environment())
        queues = provision(self.config.names, REGION)
        provision_compute(REGION, self.config.names)
        if self.config.runtime == "lambda":
            self._start_fleet(python)
        self._poller = DropFolderPoller(
            self.runner, queues["drop_queue_url"], queues["drop_queue_arn"], REGION
        )
        self._poller.start()
        # The impressions consumer's event source mapping: serving's messages reach the counters within
        # about a second, and the api function answers only after the queue is drained (``serve``).
        self.impressions = impressions_event_source(self.runner, self.config.names, REGION)
        self.impressions.start()
        # The events compactor's mapping likewise: accepted events are in raw/ before the next api answer.
        self.events = events_event_source(self.runner, self.config.names, REGION)
        self.events.start()

    def _start_fleet(self, python: str) -> None:
        """Resolve the template's functions locally and start the (empty) container fleet."""
        from embedrec_local.lambda_runtime import local

        environment = self.environment()
        values = {**environment, **local.create_secrets(self.config.admin_key, self.config.jwt_secret)}
        definitions = local.resolve_definitions(values)
        assert self._definitions_file is not None
        self._definitions_file.write_text(
            json.dumps({name: definition.to_json() for name, definition in definitions.items()})
        )
        self.fleet = local.fleet_from_environment(definitions, python, {**environment, **os.environ})
        self.fleet.take_snapshots()
        self.runner = self.fleet

    def _wait_for_moto(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._moto is not None and self._moto.poll() is not None:
                raise RuntimeError(f"the moto server exited with code {self._moto.returncode}")
            try:
                httpx.get(f"{self.moto_endpoint}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the moto server did not start within {_READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop the poller and the moto server."""
        if self._poller is not None:
            self._poller.stop()
        for source in (self.impressions, self.events):
            if source is not None:
                source.stop()
        if self.fleet is not None:
            self.fleet.close()
        if self._definitions_file is not None:
            self._definitions_file.unlink(missing_ok=True)
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._moto.kill()

    def serve(self, workers: int = 1) -> None:
        """Serve both apps on loopback until interrupted (blocking).

        Several workers behave like several warm Lambda containers: each has its own model cache.
        """
        import uvicorn

        if self.fleet is not None:
            from embedrec_local.lambda_runtime.gateway import HttpApiGateway

            # One process: the containers are the workers (one per concurrent request, per function).
            assert self.impressions is not None and self.events is not None  # started with the stack
            gateway = HttpApiGateway(
                self.fleet,
                before_api=drain_before_api(self.impressions, self.events),
                mappings={
                    deployment.IMPRESSIONS.name: self.impressions.set_enabled,
                    deployment.COMPACT_EVENTS.name: self.events.set_enabled,
                },
            )
            uvicorn.run(gateway, host=LOOPBACK, port=self.config.port, log_level="warning")
            return
        uvicorn.run(
            "embedrec_local.asgi:local_app",
            factory=True,
            host=LOOPBACK,
            port=self.config.port,
            log_level="warning",
            workers=workers,
        )

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def spawn_local_stack(
    port: int,
    admin_key: str,
    *,
    moto_port: int = 0,
    workers: int = 1,
    runtime: Runtime | None = None,
    env: dict[str, str] | None = None,
    stdout: int | IO[str] | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start ``embedrec local`` in a child process (the demo, benchmarks and integration tests use it)."""
    command = [
        sys.executable,
        "-m",
        "embedrec_local.cli",
        "local",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if moto_port:
        command += ["--moto-port", str(moto_port)]
    if runtime is not None:
        command += ["--runtime", runtime]
    return subprocess.Popen(
        command,
        # Its own process group: ``stop_local_stack`` can end the stack with everything it started
        # (the moto server, Lambda containers) even if the stack itself does not stop in time.
        start_new_session=True,
        env={**os.environ, **(env or {}), "EMBEDREC_ADMIN_KEY": admin_key},
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout not in (None, subprocess.DEVNULL) else None,
    )


def stop_local_stack(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Stop a stack started by ``spawn_local_stack``: SIGTERM, then SIGKILL to its whole group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # what it started and left behind (its own group)
    except ProcessLookupError:
        pass
    process.wait()
