"""Model lifecycle seen through the serving routes: promotion, corrupt artifacts, similar items, health."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from functions.serving import dependencies
from tests.fixtures.serving.artifacts import PublishedModel
from tests.functional.conftest import Shop
from tests.functional.serving.conftest import REFRESH_SECONDS, publish_for

URL = "/api/v1/recommendations"


@pytest.fixture(scope="module")
def world_v2() -> synthetic.SyntheticWorld:
    """The same catalogue re-trained: same ids, different vectors."""
    return synthetic.make_world(5000, 1000, seed=99)


def _version(serving: TestClient, shop: Shop) -> str | None:
    response = serving.post(URL, json={"user_id": "user_0001", "count": 5}, headers=shop.auth)
    assert response.status_code == 200, response.text
    return response.json()["metadata"]["model_version"]


def test_a_promoted_version_is_served_after_the_refresh_interval(
    serving: TestClient,
    shop: Shop,
    model: PublishedModel,
    aws_env: LocalNames,
    world_v2: synthetic.SyntheticWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The container's clock, so that publishing (slow on a loaded machine) does not count as waiting
    now = [1_000.0]
    monkeypatch.setattr(dependencies.model_store(), "_clock", lambda: now[0])
    assert _version(serving, shop) == "lightgcn_v1"

    publish_for(aws_env, shop, world_v2, version="lightgcn_v2")
    right_after = _version(serving, shop)
    now[0] += REFRESH_SECONDS + 0.1
    later = _version(serving, shop)

    assert right_after == "lightgcn_v1"  # within the interval the pointer is not re-read
    assert later == "lightgcn_v2"
    health = serving.get("/api/v1/health", headers=shop.auth).json()
    assert (health["model_version"], health["status"]) == ("lightgcn_v2", "healthy")


def test_a_corrupt_version_keeps_the_previous_one_live_and_emits_the_metric(
    serving: TestClient,
    shop: Shop,
    model: PublishedModel,
    aws_env: LocalNames,
    world_v2: synthetic.SyntheticWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _version(serving, shop) == "lightgcn_v1"
    capsys.readouterr()

    publish_for(aws_env, shop, world_v2, version="lightgcn_v2", tamper={"items.faiss": b"truncated upload"})
    time.sleep(REFRESH_SECONDS + 0.1)
    response = serving.post(URL, json={"user_id": "user_0001", "count": 5}, headers=shop.auth)
    health = serving.get("/api/v1/health", headers=shop.auth).json()

    assert response.status_code == 200 and response.json()["metadata"]["model_version"] == "lightgcn_v1"
    assert len(response.json()["recommendations"]) == 5
    assert (health["status"], health["model_version"], health["model_loaded"]) == (
        "degraded",
        "lightgcn_v1",
        True,
    )
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "ModelLoadFailures" in line
    ]
    # Once per refresh that tried it (a slow machine may pass a second refresh window meanwhile)
    assert emitted
    for metric in emitted:
        assert metric["ModelLoadFailures"] == [1.0]
        assert (metric["tenant_id"], metric["reason"], metric["version"]) == (
            shop.tenant_id,
            "integrity",
            "lightgcn_v2",
        )


def test_a_corrupt_first_version_serves_popular_items_instead_of_failing(
    serving: TestClient, shop: Shop, aws_env: LocalNames, world: synthetic.SyntheticWorld
) -> None:
    publish_for(aws_env, shop, world, tamper={"lookup.npz": b"\x00" * 10})

    response = serving.post(URL, json={"user_id": "user_0001", "count": 5}, headers=shop.auth)

    assert response.status_code == 200
    assert response.json()["metadata"]["algorithm"] == "popular"
    assert serving.get("/api/v1/health", headers=shop.auth).json()["model_loaded"] is False


def test_similar_items_come_from_the_same_index(
    serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    response = serving.get("/api/v1/items/item_0100/similar", params={"count": 7}, headers=shop.auth)

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["item_id"] == "item_0100"
    assert len(body["similar_items"]) == 7
    assert "item_0100" not in {i["item_id"] for i in body["similar_items"]}
    assert (
        body["similar_items"][0]["reason"]
        == "Customers who bought " + str(model.world.titles[99]) + " also bought this"
    )
    assert body["metadata"]["algorithm"] == "lightgcn"
    scores = [i["score"] for i in body["similar_items"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/items/item_nope/similar", 404),
        ("/api/v1/items/item_0001/similar?count=0", 422),
        ("/api/v1/items/item_0001/similar?count=101", 422),
        ("/api/v1/items/bad%20id/similar", 422),
    ],
)
def test_similar_items_errors(
    serving: TestClient, shop: Shop, model: PublishedModel, path: str, status: int
) -> None:
    assert serving.get(path, headers=shop.auth).status_code == status


def test_model_health_has_the_walkthrough_shape(
    serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    assert serving.get("/api/v1/health").status_code == 401

    health = serving.get("/api/v1/health", headers=shop.auth).json()

    assert health == {
        "status": "healthy",
        "model_loaded": True,
        "model_version": "lightgcn_v1",
        "index_loaded": True,
        "index_size": 5000,
        "cache_connected": True,
    }
    assert serving.get("/health").json() == {"status": "healthy"}
