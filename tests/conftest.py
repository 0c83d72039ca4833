"""Shared fixtures: an in-process AWS (moto) provisioned from the same specs as the CDK app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from embedrec_local import moto_dynamodb, moto_sqs
from embedrec_local.moto_locks import serialise_dynamodb_writes
from embedrec_local.provision import LocalNames, compute_environment, provision, provision_compute

moto_dynamodb.install()  # the local stack's DynamoDB transactions, in-process too
moto_sqs.install()  # and its queue counts

REGION = "us-east-1"
ADMIN_KEY = "adm_test_admin_key_0123456789"
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalNames]:
    """moto in-process with every table, bucket and queue of the platform, and the functions' env vars."""
    names = LocalNames()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "EMBEDREC_ADMIN_KEY": ADMIN_KEY,
        "EMBEDREC_JWT_SECRET": JWT_SECRET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "embedrec",
        "POWERTOOLS_SERVICE_NAME": "embedrec-test",
        **names.environment(),
        **compute_environment(names, REGION),
    }.items():
        monkeypatch.setenv(key, value)
    from functions.common.container import reset_container_state

    # moto's DynamoDB is not thread-safe for conditional writes; parallel tests (the login lockout,
    # the shared quota buckets) need them atomic as in DynamoDB: one lock around its writes.
    serialise_dynamodb_writes()
    with mock_aws():
        provision(names, REGION)
        provision_compute(REGION, names)
        reset_container_state()
        yield names
    reset_container_state()
