"""Warm boto3 clients: created once per container by cached factories (STYLE.md rule 5).

Endpoints are never set here: boto3 honours ``AWS_ENDPOINT_URL``, which is how the embedded local
stack points every function at its moto server without a code path of its own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_stepfunctions import SFNClient

# Retries with jitter absorb throttling; the data layer turns what is left into ServiceUnavailableError.
_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=10)


@lru_cache(maxsize=1)
def dynamodb_resource() -> DynamoDBServiceResource:
    """The container's DynamoDB resource."""
    return boto3.resource("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    """The container's S3 client (SigV4, so presigned URLs work in every region)."""
    return boto3.client("s3", config=_CONFIG.merge(Config(signature_version="s3v4")))


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    """The container's low-level DynamoDB client (typed attribute values, for hot batched paths)."""
    return boto3.client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def batch_client() -> BatchClient:
    """The container's AWS Batch client."""
    return boto3.client("batch", config=_CONFIG)


@lru_cache(maxsize=1)
def stepfunctions_client() -> SFNClient:
    """The container's Step Functions client."""
    return boto3.client("stepfunctions", config=_CONFIG)


@lru_cache(maxsize=1)
def scheduler_client() -> EventBridgeSchedulerClient:
    """The container's EventBridge Scheduler client."""
    return boto3.client("scheduler", config=_CONFIG)
