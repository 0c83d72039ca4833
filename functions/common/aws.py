"""Warm boto3 clients: created once per container by cached factories.

Endpoints are never set here: boto3 honours ``AWS_ENDPOINT_URL``, which is how the embedded local
stack points every function at its moto server without a code path of its own.

Every client also refuses to make a call inside ``no_blocking_calls()``: a hot async route runs its
logic on the event loop first and, should that logic need AWS after all (a cold cache, a refresh
that is due), the call raises ``WouldBlockError`` before anything is sent and the route runs the
logic again on a worker thread. The warm path then costs no thread hand-off (measured: 1.35 ms →
0.59 ms per recommendation request in-process on the 2-core benchmark machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
import botocore.session
from botocore.config import Config

from functions.common.container import per_container

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

# Retries with jitter absorb throttling; the data layer turns what is left into ServiceUnavailableError.
_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=10)
_Client = TypeVar("_Client")
_BLOCKING_REFUSED: ContextVar[bool] = ContextVar("embedrec_blocking_refused", default=False)


class WouldBlockError(Exception):
    """Blocking work was attempted inside ``no_blocking_calls()``; nothing was sent or changed."""


@contextmanager
def no_blocking_calls() -> Iterator[None]:
    """Within this block (on an event loop), AWS calls raise ``WouldBlockError`` instead of blocking."""
    token = _BLOCKING_REFUSED.set(True)
    try:
        yield
    finally:
        _BLOCKING_REFUSED.reset(token)


def blocking_refused() -> bool:
    """Whether this code runs inside ``no_blocking_calls()`` (on the event loop)."""
    return _BLOCKING_REFUSED.get()


def refuse_blocking(what: str) -> None:
    """Raise ``WouldBlockError`` inside ``no_blocking_calls()``: for waits other than AWS calls."""
    if _BLOCKING_REFUSED.get():
        raise WouldBlockError(f"{what} would block the event loop")


def _refuse_calls(event_name: str = "", **_: Any) -> None:
    refuse_blocking(event_name.removeprefix("before-call.") or "an AWS call")


def _guarded(client: _Client) -> _Client:
    cast(Any, client).meta.events.register("before-call", _refuse_calls)
    return client


def renew_session() -> None:
    """Give every client built from now on fresh credentials and connections, keeping what was parsed.

    After a SnapStart restore (``functions.serving.snapshot``) the clients in the snapshot hold the
    credentials and the sockets of the container that was snapshotted, shared by every container
    restored from it. Most of a client's cost is the service model and endpoint rules that the
    botocore loader reads and caches (measured: the first DynamoDB client 73-78 ms CPU, a second
    one 4 ms), so the new default session reuses the old one's loader. Clients built before are not
    changed: forget them with ``functions.common.container.reset_container_state``.
    """
    # boto3 exposes its default session's botocore session only as ``_session``.
    loader = boto3._get_default_session()._session.get_component("data_loader")
    fresh = botocore.session.get_session()
    fresh.register_component("data_loader", loader)
    boto3.setup_default_session(botocore_session=fresh)


@per_container
def dynamodb_resource() -> DynamoDBServiceResource:
    """The container's DynamoDB resource."""
    resource = boto3.resource("dynamodb", config=_CONFIG)
    _guarded(resource.meta.client)
    return resource


@per_container
def s3_client() -> S3Client:
    """The container's S3 client (SigV4, so presigned URLs work in every region)."""
    return _guarded(boto3.client("s3", config=_CONFIG.merge(Config(signature_version="s3v4"))))


@per_container
def dynamodb_client() -> DynamoDBClient:
    """The container's low-level DynamoDB client (typed attribute values, for hot batched paths)."""
    return _guarded(boto3.client("dynamodb", config=_CONFIG))


@per_container
def batch_client() -> BatchClient:
    """The container's AWS Batch client."""
    return _guarded(boto3.client("batch", config=_CONFIG))


@per_container
def stepfunctions_client() -> SFNClient:
    """The container's Step Functions client."""
    return _guarded(boto3.client("stepfunctions", config=_CONFIG))


@per_container
def scheduler_client() -> EventBridgeSchedulerClient:
    """The container's EventBridge Scheduler client."""
    return _guarded(boto3.client("scheduler", config=_CONFIG))


@per_container
def sqs_client() -> SQSClient:
    """The container's SQS client."""
    return _guarded(boto3.client("sqs", config=_CONFIG))


@per_container
def secretsmanager_client() -> SecretsManagerClient:
    """The container's Secrets Manager client (for ``functions.common.secrets``)."""
    return _guarded(boto3.client("secretsmanager", config=_CONFIG))
