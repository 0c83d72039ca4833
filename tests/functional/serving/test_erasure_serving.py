"""After an erasure the shopper is a stranger to every version serving answers with, at once.

The api app erases (``DELETE /api/v1/users/{id}``); the serving app, in-process on the same moto
stack, answers with the active version, a version an A/B test pins, or a version published after the
erasure by a job that took its snapshot before it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from tests.functional.analytics.conftest import add_models
from tests.functional.conftest import Shop
from tests.functional.serving.conftest import REFRESH_SECONDS, publish_for

URL = "/api/v1/recommendations"


@pytest.fixture(scope="module")
def small_world() -> synthetic.SyntheticWorld:
    return synthetic.make_world(400, 60, seed=8)


def _recommend(serving: TestClient, shop: Shop, user_id: str) -> dict[str, Any]:
    response = serving.post(URL, json={"user_id": user_id, "count": 10}, headers=shop.auth)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _history_titles(world: synthetic.SyntheticWorld, user_id: str) -> set[str]:
    items, _types = world.history(list(world.user_ids).index(user_id))
    return {str(world.titles[index]) for index in items.tolist()}


def _names_history(answer: dict[str, Any], titles: set[str]) -> bool:
    return any(title in item["reason"] for item in answer["recommendations"] for title in titles)


def _erase(client: TestClient, shop: Shop, user_id: str) -> None:
    response = client.delete(f"/api/v1/users/{user_id}", headers=shop.auth)
    assert response.status_code == 200, response.text


def test_an_erased_user_gets_non_personalised_answers_at_once(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    aws_env: LocalNames,
    small_world: synthetic.SyntheticWorld,
) -> None:
    publish_for(aws_env, shop, small_world)
    titles = _history_titles(small_world, "user_0001")
    before = _recommend(serving, shop, "user_0001")
    assert before["metadata"]["algorithm"] == "lightgcn" and _names_history(before, titles)

    _erase(client, shop, "user_0001")
    after = _recommend(serving, shop, "user_0001")

    assert after["metadata"]["algorithm"] == "popular"
    assert _ids(after) == _ids(_recommend(serving, shop, "a_stranger"))
    assert not _names_history(after, titles)


def test_an_ab_tests_pinned_version_forgets_the_erased_user_too(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    aws_env: LocalNames,
    small_world: synthetic.SyntheticWorld,
) -> None:
    publish_for(aws_env, shop, small_world, version="lightgcn_v1")
    publish_for(aws_env, shop, small_world, version="two_tower_v1", activate_now=False)
    add_models(shop.tenant_id, "lightgcn_v1", "two_tower_v1")
    created = client.post(
        "/api/admin/ab-tests",
        headers=shop.auth,
        json={
            "name": "pinned",
            "variants": [
                {"id": "control", "model_version": "lightgcn_v1", "traffic": 50},
                {"id": "treatment", "model_version": "two_tower_v1", "traffic": 50},
            ],
            "metric": "conversion_rate",
            "duration_days": 7,
        },
    )
    assert created.status_code == 201, created.text
    user = next(
        f"user_{n:04d}"
        for n in range(1, 60)
        if _recommend(serving, shop, f"user_{n:04d}")["metadata"]["model_version"] == "two_tower_v1"
    )
    titles = _history_titles(small_world, user)
    assert _names_history(_recommend(serving, shop, user), titles)

    _erase(client, shop, user)
    after = _recommend(serving, shop, user)

    assert after["metadata"]["model_version"] == "two_tower_v1"  # still in the test's arm
    assert after["metadata"]["algorithm"] == "popular" and not _names_history(after, titles)


def test_a_version_published_after_the_erasure_does_not_bring_the_user_back(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    aws_env: LocalNames,
    small_world: synthetic.SyntheticWorld,
) -> None:
    # A training job took its snapshot with user_0002 in it, the user is erased, then the job publishes.
    publish_for(aws_env, shop, small_world, version="lightgcn_v1")
    _recommend(serving, shop, "user_0002")
    _erase(client, shop, "user_0002")
    publish_for(aws_env, shop, small_world, version="lightgcn_v2")
    time.sleep(REFRESH_SECONDS + 0.1)

    after = _recommend(serving, shop, "user_0002")

    assert after["metadata"]["model_version"] == "lightgcn_v2"
    assert after["metadata"]["algorithm"] == "popular"
    assert not _names_history(after, _history_titles(small_world, "user_0002"))


def test_events_sent_after_the_erasure_personalise_like_a_new_shoppers(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    aws_env: LocalNames,
    small_world: synthetic.SyntheticWorld,
) -> None:
    publish_for(aws_env, shop, small_world)
    _erase(client, shop, "user_0003")
    viewed = str(small_world.item_ids[7])

    sent = client.post(
        "/api/v1/interactions",
        headers=shop.auth,
        json={"user_id": "user_0003", "item_id": viewed, "interaction_type": "view"},
    )
    after = _recommend(serving, shop, "user_0003")

    assert sent.status_code == 200, sent.text
    assert after["metadata"]["algorithm"] == "lightgcn"
    assert {item["reason"] for item in after["recommendations"]} <= {
        f"Because you viewed {small_world.titles[7]}",
        "You viewed this recently",
    }


def _ids(answer: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in answer["recommendations"]]
