"""The integration tier: the local stack over HTTP.

By default each session starts the embedded stack (`embedrec local`) on free loopback ports. Set
``EMBEDREC_API_URL`` and ``EMBEDREC_ADMIN_KEY`` to run the same tests against a stack that is already
running (for example LocalStack with the CDK app deployed by cdklocal).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.stack import free_port, spawn_local_stack


@dataclass(frozen=True)
class RunningStack:
    """Where the stack under test answers."""

    api_url: str
    admin_key: str
    aws_endpoint: str | None = None  # the embedded stack's moto (None for a stack named by the environment)


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """A running stack: the one named by the environment, or a fresh embedded one."""
    if os.environ.get("EMBEDREC_API_URL"):
        yield RunningStack(os.environ["EMBEDREC_API_URL"], os.environ["EMBEDREC_ADMIN_KEY"])
        return
    port, moto_port = free_port(), free_port()
    admin_key = "adm_integration_" + os.urandom(8).hex()
    process = spawn_local_stack(port, admin_key, moto_port=moto_port)
    client = EmbedrecClient(f"http://127.0.0.1:{port}")
    try:
        client.wait_until_healthy(timeout_s=90)
        yield RunningStack(f"http://127.0.0.1:{port}", admin_key, f"http://127.0.0.1:{moto_port}")
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def api(stack: RunningStack) -> Iterator[EmbedrecClient]:
    """A fresh client of the stack."""
    client = EmbedrecClient(stack.api_url)
    yield client
    client.close()
