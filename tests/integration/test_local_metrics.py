"""The functions' EMF metrics land in the embedded CloudWatch, and `embedrec metrics` prints them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3
import pytest

from embedrec_local.client import EmbedrecClient
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration


def test_serving_and_ingestion_metrics_reach_local_cloudwatch(
    api: EmbedrecClient, stack: RunningStack
) -> None:
    if stack.aws_endpoint is None:
        pytest.skip("only the embedded stack exposes its CloudWatch endpoint to the tests")
    api.open_shop(stack.admin_key, "Metrics", password="Metrics-Pass-42")
    api.request(
        "POST", "/api/v1/interactions", json={"user_id": "u1", "item_id": "i1", "interaction_type": "view"}
    )
    api.request("POST", "/api/v1/recommendations", json={"user_id": "u1", "count": 3})

    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    wanted = {"InteractionsStored", "RecommendationsServed"}
    deadline, names = time.monotonic() + 20, set()
    while time.monotonic() < deadline and not wanted <= names:
        time.sleep(0.5)
        names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="embedrec")["Metrics"]}
    assert wanted <= names

    printed = subprocess.run(
        [sys.executable, "-m", "embedrec_local.cli", "metrics", "--endpoint", stack.aws_endpoint],
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "RecommendationsServed" in printed and "InteractionsStored" in printed
