"""On the Lambda-faithful runtime: what frozen and reclaimed containers must not lose.

Serving hands each invocation's impressions to the impressions queue; the ``impressions`` consumer
writes them. Nothing served may be missing once the queue is drained.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import httpx
import pytest

from embedrec_local.client import EmbedrecClient
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration

ITEMS = "item_id,title,category,price,brand,description\n" + "".join(
    f"item_{n:04d},Item {n},Audio,{10 + n}.0,Brand,x\n" for n in range(40)
)
HISTORY = "user_id,item_id,interaction_type,timestamp\n" + "".join(
    f"u{n},item_{n % 40:04d},purchase,2025-01-02T10:00:00Z\n" for n in range(120)
)
SERVED = 48
CONCURRENCY = 6


@pytest.fixture
def lambda_stack(stack: RunningStack) -> RunningStack:
    if stack.runtime != "lambda":
        pytest.skip("needs the embedded stack on the Lambda-faithful runtime (--runtime lambda)")
    return stack


def _stats(stack: RunningStack) -> dict[str, dict[str, object]]:
    response = httpx.get(f"{stack.api_url}/_local/lambda/stats", timeout=30)
    response.raise_for_status()
    stats: dict[str, dict[str, object]] = response.json()
    return stats


def _shop_with_catalogue(stack: RunningStack, name: str, tmp_path: Path) -> EmbedrecClient:
    """A new shop (logged in) with the 40-item catalogue."""
    api = EmbedrecClient(stack.api_url)
    api.open_shop(stack.admin_key, f"{name} {os.urandom(3).hex()}", password=f"{name}-Pass-42")
    (tmp_path / "items.csv").write_text(ITEMS)
    api.upload_csv("items", tmp_path / "items.csv")
    return api


def test_every_response_served_by_containers_later_frozen_and_reclaimed_is_counted(
    lambda_stack: RunningStack, tmp_path: Path
) -> None:
    api = _shop_with_catalogue(lambda_stack, "Frozen", tmp_path)
    (tmp_path / "history.csv").write_text(HISTORY)
    api.upload_csv("interactions", tmp_path / "history.csv")
    key = api.request("POST", "/api/v1/api-keys", json={"name": "load", "permissions": ["read"]})["key"]

    def recommend(n: int) -> tuple[str, int]:
        with httpx.Client(base_url=lambda_stack.api_url, timeout=120) as http:
            response = http.post(
                "/api/v1/recommendations",
                json={"user_id": f"shopper_{n}", "count": 5},
                headers={"Authorization": f"Bearer {key}"},
            )
        assert response.status_code == 200, response.text
        assert response.json()["recommendations"], response.text
        body = response.json()
        return str(body["metadata"]["recommendation_id"]), len(body["recommendations"])

    # N answers from several containers at once; each container is frozen after each answer
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(recommend, range(SERVED)))
    assert len({recommendation_id for recommendation_id, _ in answers}) == SERVED
    serving = _stats(lambda_stack)["serving"]
    assert int(str(serving["peak_containers"])) > 1  # the load was spread over several containers
    # each of them restored from serving's snapshot, as SnapStart starts them in AWS
    assert serving["snap_start"] is True and serving["restores"] == serving["cold_starts"]

    # Every container is reclaimed without notice (no thread of theirs runs again) once it is idle:
    # as in Lambda, one still handing off its impressions after its answer is busy until done
    reclaimed = 0
    for _ in range(200):
        reclaim = httpx.post(f"{lambda_stack.api_url}/_local/lambda/reclaim", timeout=60)
        reclaimed += int(reclaim.json()["reclaimed"])
        if _stats(lambda_stack)["serving"]["containers"] == 0:
            break
        time.sleep(0.05)
    assert reclaimed >= 1
    assert _stats(lambda_stack)["serving"]["containers"] == 0
    # and each invocation ran its work after the response (the after-response extension)
    assert len(cast(list[float], _stats(lambda_stack)["serving"]["post_response_ms"])) >= SERVED

    # The responses' impressions were handed off to the impressions queue; the local stack drains it
    # (its event source mapping invokes the ``impressions`` consumer) before the api function answers
    summary = api.request("GET", "/api/v1/analytics/summary?days=1")
    assert summary["recommendation_requests"] == SERVED
    assert summary["recommendations_served"] == sum(shown for _, shown in answers)
    consumer = _stats(lambda_stack)["impressions"]
    assert int(str(consumer["invocations"])) >= 1 and int(str(consumer["failures"])) == 0
    api.close()


def test_a_disabled_impressions_mapping_holds_the_messages_until_it_is_enabled(
    lambda_stack: RunningStack, tmp_path: Path
) -> None:
    api = _shop_with_catalogue(lambda_stack, "Paused", tmp_path)
    control = f"{lambda_stack.api_url}/_local/lambda/event-source-mappings"
    assert httpx.post(f"{control}/no-such-function/disable").status_code == 404
    httpx.post(f"{control}/impressions/disable").raise_for_status()
    try:
        consumed = int(str(_stats(lambda_stack)["impressions"]["invocations"]))
        for n in range(3):
            api.request("POST", "/api/v1/recommendations", json={"user_id": f"p{n}", "count": 3})
        time.sleep(2.0)  # twice the mapping's window: an enabled mapping would have delivered by now
        assert int(str(_stats(lambda_stack)["impressions"]["invocations"])) == consumed
    finally:
        httpx.post(f"{control}/impressions/enable").raise_for_status()
    # Enabled again (and drained before the api answers), every response is counted
    assert api.request("GET", "/api/v1/analytics/summary?days=1")["recommendation_requests"] == 3
    api.close()
