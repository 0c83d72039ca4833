"""Warm answers are computed on the event loop; anything that needs AWS runs again on a worker thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from functions.common.container import reset_container_state
from functions.serving import dependencies
from functions.serving.store import storage
from tests.fixtures.serving.artifacts import PublishedModel
from tests.functional.conftest import Shop


@pytest.fixture
def threads_used(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How many times the serving routes fell back to a worker thread, and for what."""
    used: list[str] = []
    from functions.serving import routes

    real = routes.run_in_threadpool

    async def counting(work: Any) -> Any:
        used.append("thread")
        return await real(work)

    monkeypatch.setattr(routes, "run_in_threadpool", counting)
    return used


@pytest.fixture
def windowed_serving(serving: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The serving app as deployed (impressions written after each request), on a container clock
    that moves only when the test says so: the model refresh and activity windows are exact.
    """
    reset_container_state()
    now = [1_000.0]
    service = dependencies.recommendation_service()
    monkeypatch.setattr(service.models, "_clock", lambda: now[0])
    monkeypatch.setattr(service._events, "_clock", lambda: now[0])  # noqa: SLF001
    serving.now = now  # type: ignore[attr-defined]
    yield serving


def _recommend(serving: TestClient, shop: Shop, user_id: str) -> dict[str, Any]:
    response = serving.post(
        "/api/v1/recommendations", json={"user_id": user_id, "count": 10}, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_busy_shop_is_answered_on_the_loop_and_new_events_still_arrive(
    client: TestClient,
    windowed_serving: TestClient,
    shop: Shop,
    model: PublishedModel,
    threads_used: list[str],
) -> None:
    # A cold container: the model load and the first reads need AWS, so the answer comes from a thread
    first = _recommend(windowed_serving, shop, "user_0001")
    assert len(threads_used) == 1 and first["metadata"]["model_version"] == model.version

    # A quiet shop reads its activity counters before every answer (on a thread); once busy, they
    # are read once per poll window and warm answers within the window stay on the loop
    for _ in range(storage.BUSY_REQUESTS):
        assert _recommend(windowed_serving, shop, "user_0001")["recommendations"] == first["recommendations"]
    on_threads = len(threads_used)
    for _ in range(5):
        assert _recommend(windowed_serving, shop, "user_0001")["recommendations"] == first["recommendations"]
    assert len(threads_used) == on_threads

    # A click on the least similar item reaches the busy shop's answers within a poll and one read
    far = next(
        str(model.world.item_ids[i])
        for i in np.argsort(model.world.item_vectors @ model.world.user_vectors[0])
    )
    clicked = client.post(
        "/api/v1/interactions",
        json=[{"user_id": "user_0001", "item_id": far, "interaction_type": "add_to_cart"}],
        headers=shop.auth,
    )
    assert clicked.status_code == 200, clicked.text
    windowed_serving.now[0] += 0.2  # type: ignore[attr-defined]  # the poll window (0.1 s) passes
    after = _recommend(windowed_serving, shop, "user_0001")
    assert len(threads_used) == on_threads + 1  # the request that found the counters stale read them
    assert after["recommendations"] != first["recommendations"]
    assert after["metadata"]["cache_hit"] is False
    # And every answer kept its own recommendation id (a retried attempt left no impression behind)
    assert after["metadata"]["recommendation_id"] != first["metadata"]["recommendation_id"]


def test_similar_items_are_answered_on_the_loop_once_warm(
    windowed_serving: TestClient, shop: Shop, model: PublishedModel, threads_used: list[str]
) -> None:
    item = str(model.world.item_ids[0])
    answers = [
        windowed_serving.get(f"/api/v1/items/{item}/similar?count=5", headers=shop.auth) for _ in range(3)
    ]
    assert all(a.status_code == 200 for a in answers)
    assert answers[0].json()["similar_items"] == answers[2].json()["similar_items"]
    assert len(threads_used) == 1  # similar items read no events: only the cold load needed a thread
