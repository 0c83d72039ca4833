"""The walkthrough's Parts 1-3 with a shop's own history export dated January to March 2025.

A shop's first experience must not depend on how old its export is: the training window is anchored
on the newest interaction, and the export's purchases reach serving like live events do.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.sample_data import generate_sample_data
from tests.e2e.test_training_workflow import _follow
from tests.integration.conftest import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "History-Pass-42"


def _purchases(path: Path) -> dict[str, set[str]]:
    bought: dict[str, set[str]] = defaultdict(set)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["interaction_type"] == "purchase":
                bought[row["user_id"]].add(row["item_id"])
    return bought


def _recommend(api: EmbedrecClient, user_id: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = api.request(
            "POST", "/api/v1/recommendations", json={"user_id": user_id, "count": 20}
        )
        if body["metadata"]["model_version"] == version:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"serving never picked up {version}: {body['metadata']}")
        time.sleep(0.5)


def test_a_2025_history_export_trains_serves_and_its_purchases_are_excluded(
    api: EmbedrecClient, stack: RunningStack, tmp_path: Path
) -> None:
    # Part 1: a shop uploads its catalogue and an export of January-March 2025
    api.open_shop(stack.admin_key, "history2025", password=PASSWORD)
    generate_sample_data(
        tmp_path, users=800, items=250, interactions=12_000, days=90, end=datetime(2025, 4, 1, tzinfo=UTC)
    )
    api.upload_csv("items", tmp_path / "items.csv")
    uploaded = api.upload_csv("interactions", tmp_path / "interactions.csv")
    assert (uploaded["status"], uploaded["accepted"]) == ("success", 12_000)
    bought = _purchases(tmp_path / "interactions.csv")

    # ... and, before any model, a buyer is not offered what the export says they bought
    buyer = max(bought, key=lambda user: len(bought[user]))
    cold: dict[str, Any] = api.request(
        "POST", "/api/v1/recommendations", json={"user_id": buyer, "count": 20}
    )
    assert cold["metadata"]["algorithm"] == "popular"
    assert not {i["item_id"] for i in cold["recommendations"]} & bought[buyer]

    # Part 2: training with the default 90 days succeeds, on the export's own dates
    job = api.request(
        "POST",
        "/api/admin/training/trigger",
        expect=(202,),
        json={"model_type": "lightgcn", "config": {"embedding_dim": 32}},  # 4 epochs lose to popularity
    )
    final = _follow(api, job["job_id"])[-1]
    assert (final["status"], final["deployed"]) == ("completed", True), final
    window = final["data_window"]
    assert (window["anchor"], window["days"]) == ("newest_interaction", 90)
    assert window["start"].startswith("2024-12-31") and window["end"].startswith("2025-03-31")  # 90 days
    version = final["model_version"]
    if stack.aws_endpoint is not None:  # the embedded stack: its S3 is reachable, so read the manifest
        bucket, key = final["model_path"].removeprefix("s3://").split("/", 1)
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        manifest_key = key.rsplit("/", 1)[0] + "/manifest.json"
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        assert manifest["data_window"]["window"] == window

    # Part 2.3: health shows the model
    served = _recommend(api, buyer, version)
    health = api.request("GET", "/api/v1/health")
    assert (health["model_loaded"], health["model_version"], health["status"]) == (True, version, "healthy")

    # Part 3: recommendations are personalised, and the export's purchases stay out of them
    assert served["metadata"]["algorithm"] == "lightgcn"
    assert len(served["recommendations"]) == 20
    assert any(i["reason"].startswith("Because you") for i in served["recommendations"])
    for user in sorted(bought, key=lambda u: -len(bought[u]))[:20]:
        answer = _recommend(api, user, version)
        assert not {i["item_id"] for i in answer["recommendations"]} & bought[user], user
