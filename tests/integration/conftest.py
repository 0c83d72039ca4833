"""The integration tier: the local stack over HTTP.

By default each session starts the embedded stack (`embedrec local`) on free loopback ports with the
Lambda-faithful runtime (`--runtime lambda`: every function in emulated Lambda containers from its
built bundle). Without a CPython 3.12 the session falls back to the in-process runtime and says so;
``EMBEDREC_TEST_RUNTIME=inprocess`` (or ``lambda``) chooses explicitly. Set ``EMBEDREC_API_URL`` and
``EMBEDREC_ADMIN_KEY`` to run the same tests against a stack that is already running (for example
LocalStack with the CDK app deployed by cdklocal).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.stack import RUNTIMES, Runtime, free_port, spawn_local_stack, stop_local_stack
from layers.build import ROOT, find_python312


def test_runtime() -> Runtime:
    """The runtime the tier runs on: EMBEDREC_TEST_RUNTIME, else lambda (inprocess without Python 3.12)."""
    forced = os.environ.get("EMBEDREC_TEST_RUNTIME")
    if forced:
        if forced not in RUNTIMES:
            raise pytest.UsageError(f"EMBEDREC_TEST_RUNTIME must be one of {RUNTIMES}, not {forced!r}")
        return forced  # type: ignore[return-value]
    if find_python312() is None:
        message = (
            "NO CPython 3.12 FOUND: the integration and e2e tiers run IN-PROCESS, not on the "
            "Lambda-faithful runtime (install Python 3.12, e.g. `pyenv install 3.12`)"
        )
        warnings.warn(message, stacklevel=1)
        sys.stderr.write(f"\n*** {message} ***\n")
        return "inprocess"
    return "lambda"


test_runtime.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@dataclass(frozen=True)
class RunningStack:
    """Where the stack under test answers."""

    api_url: str
    admin_key: str
    aws_endpoint: str | None = None  # the embedded stack's moto (None for a stack named by the environment)
    runtime: str | None = None  # the embedded stack's runtime (None for a stack named by the environment)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A running stack: the one named by the environment, or a fresh embedded one."""
    if os.environ.get("EMBEDREC_API_URL"):
        yield RunningStack(os.environ["EMBEDREC_API_URL"], os.environ["EMBEDREC_ADMIN_KEY"])
        return
    port, moto_port = free_port(), free_port()
    admin_key = "adm_integration_" + os.urandom(8).hex()
    runtime = test_runtime()
    if runtime == "lambda":  # the code asset from the sources under test (layers: `make layers`)
        subprocess.run([sys.executable, "-m", "layers.build", "--layer", "code"], cwd=ROOT, check=True)
    log_path = tmp_path_factory.mktemp("stack") / "stack.log"  # the functions' logs, to read on failure
    log = log_path.open("w")
    process = spawn_local_stack(port, admin_key, moto_port=moto_port, runtime=runtime, stdout=log)
    client = EmbedrecClient(f"http://127.0.0.1:{port}")
    try:
        # The first lambda session may synthesise the template (about a minute on a loaded machine).
        client.wait_until_healthy(timeout_s=90 if runtime == "inprocess" else 300)
        yield RunningStack(f"http://127.0.0.1:{port}", admin_key, f"http://127.0.0.1:{moto_port}", runtime)
    finally:
        client.close()
        stop_local_stack(process)
        log.close()


@pytest.fixture
def api(stack: RunningStack) -> Iterator[EmbedrecClient]:
    """A fresh client of the stack."""
    client = EmbedrecClient(stack.api_url)
    yield client
    client.close()
