"""Functional fixtures: the api app in-process over moto, and a ready tenant with an admin login."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.concurrency import run_in_threadpool
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from embedrec_local.event_sources import (
    SqsEventSource,
    events_event_source,
    impressions_event_source,
    sqs_record,
)
from embedrec_local.provision import LocalNames
from embedrec_local.runner import LambdaRunner
from tests.conftest import ADMIN_KEY

ADMIN_PASSWORD = "SecurePass123!"


@dataclass(frozen=True)
class Shop:
    """A tenant with an admin account and its access token."""

    tenant_id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header of the shop's admin."""
        return {"Authorization": f"Bearer {self.token}"}


def admin_headers() -> dict[str, str]:
    """The platform admin's Authorization header."""
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def client(aws_env: LocalNames) -> Iterator[TestClient]:
    """The api app, in-process; the events queue is delivered to the compactor after each request.

    So accepted JSON events are in ``raw/`` when the response is read, as a test reading S3 or training
    next expects (the local stack delivers the queue before each api request instead). Tests of the
    hand-off itself build their client with ``api_client(deliver_events=False)``.
    """
    with api_client(aws_env) as test_client:
        yield test_client


@contextmanager
def api_client(aws_env: LocalNames, *, deliver_events: bool = True) -> Iterator[TestClient]:
    """A test client of the api app; ``deliver_events``: drain the events queue after each request."""
    from functions.api.app import app

    events = events_event_source(LambdaRunner(), aws_env, "us-east-1")

    async def delivering(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            await run_in_threadpool(events.drain)

    with TestClient(delivering if deliver_events else app) as test_client:
        yield test_client


def make_shop(client: TestClient, slug: str, email: str, role: str = "admin", plan: str = "pro") -> Shop:
    """Create a tenant and an account through the API, then log in."""
    tenant = client.post(
        "/api/admin/tenants",
        json={"name": f"{slug} store", "slug": slug, "plan": plan, "settings": {"embedding_dimension": 64}},
        headers=admin_headers(),
    )
    assert tenant.status_code == 201, tenant.text
    tenant_id = tenant.json()["id"]
    user = client.post(
        "/api/admin/users",
        json={"tenant_id": tenant_id, "email": email, "password": ADMIN_PASSWORD, "role": role},
        headers=admin_headers(),
    )
    assert user.status_code == 201, user.text
    login = client.post("/api/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return Shop(tenant_id=tenant_id, email=email, token=login.json()["access_token"])


@pytest.fixture
def shop(client: TestClient) -> Shop:
    """The walkthrough's TechGadgets tenant with its admin logged in."""
    return make_shop(client, "techgadgets", "admin@techgadgets.com")


@pytest.fixture
def other_shop(client: TestClient) -> Shop:
    """A second tenant, to prove isolation."""
    return make_shop(client, "otherstore", "owner@otherstore.example")


@pytest.fixture
def impressions(aws_env: LocalNames) -> SqsEventSource:
    """The impressions queue's event source mapping, in-process: ``drain()`` before reading counters."""
    return impressions_event_source(LambdaRunner(), aws_env, "us-east-1")


@pytest.fixture
def events(aws_env: LocalNames) -> SqsEventSource:
    """The events queue's event source mapping, in-process: ``drain()`` before reading stored events."""
    return events_event_source(LambdaRunner(), aws_env, "us-east-1")


def sqs_batch(queue_arn: str, *bodies: str) -> dict[str, Any]:
    """Lambda's SQS event of ``bodies`` delivered for the first time (message ids ``m0``, ``m1``, ...)."""
    messages = [
        {
            "MessageId": f"m{n}",
            "ReceiptHandle": f"r{n}",
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
        for n, body in enumerate(bodies)
    ]
    return {"Records": [sqs_record(message, queue_arn) for message in messages]}
