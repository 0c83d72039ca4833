"""``POST /api/v1/recommendations`` end to end: serving app + logic + moto S3/DynamoDB, real artifacts."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from functions.common import resources
from tests.fixtures.serving.artifacts import PublishedModel, write_catalog_popular
from tests.functional.conftest import Shop

URL = "/api/v1/recommendations"


def _recommend(serving: TestClient, shop: Shop, **body: object) -> dict:
    response = serving.post(URL, json=body, headers=shop.auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_walkthrough_request_gets_the_walkthrough_shape(
    serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    body = {"user_id": "user_0001", "count": 10, "filters": {"category": "Electronics"}}

    first = _recommend(serving, shop, **body)
    second = _recommend(serving, shop, **body)

    assert set(first) == {"recommendations", "metadata"}
    assert len(first["recommendations"]) == 10
    for item in first["recommendations"]:
        assert set(item) == {"item_id", "title", "score", "category", "price", "reason"}
        assert item["category"] == "Electronics"
        assert item["reason"].startswith(("Because you viewed", "Because you bought", "Because you added"))
    meta = first["metadata"]
    assert set(meta) == {
        "model_version",
        "latency_ms",
        "cache_hit",
        "algorithm",
        "recommendation_id",
        "ab_test",
    }
    assert meta["ab_test"] is None  # no A/B test runs for this shop
    assert (meta["model_version"], meta["algorithm"], meta["cache_hit"]) == ("lightgcn_v1", "lightgcn", False)
    assert second["metadata"]["cache_hit"] is True
    assert second["recommendations"] == first["recommendations"]
    assert second["metadata"]["recommendation_id"] != meta["recommendation_id"]


def test_a_new_user_gets_popular_items(serving: TestClient, shop: Shop, model: PublishedModel) -> None:
    result = _recommend(serving, shop, user_id="user_new", count=10)

    overall = synthetic.popular_json(model.world)["overall"]
    assert result["metadata"]["algorithm"] == "popular"
    assert [i["item_id"] for i in result["recommendations"]] == [e["item_id"] for e in overall[:10]]


def test_a_new_user_filtered_by_category_gets_that_categorys_popular_items(
    serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    result = _recommend(serving, shop, user_id="user_new", count=10, filters={"category": "Laptops"})

    by_category = synthetic.popular_json(model.world)["by_category"]["Laptops"]
    assert [i["item_id"] for i in result["recommendations"]] == [e["item_id"] for e in by_category[:10]]
    assert {i["reason"] for i in result["recommendations"]} == {"Popular in Laptops"}


@pytest.mark.parametrize(
    "filters",
    [
        {"category": "Laptops", "min_price": 1000, "max_price": 2000},
        {"category": ["Laptops", "Tablets"], "min_price": 1000, "max_price": 1100},
        {"category": ["audio"], "max_price": 60},
    ],
)
def test_filters_return_the_full_count_and_every_item_satisfies_them(
    serving: TestClient, shop: Shop, model: PublishedModel, filters: dict
) -> None:
    categories = {
        c.capitalize()
        for c in ([filters["category"]] if isinstance(filters["category"], str) else filters["category"])
    }
    world = model.world
    passing = (
        np.isin(world.categories, list(categories))
        & (world.prices >= filters.get("min_price", 0))
        & (world.prices <= filters.get("max_price", np.inf))
    )
    assert passing.sum() >= 20  # enough items pass, so the full count is due

    for user in ("user_0001", "user_0500", "user_new"):
        result = _recommend(serving, shop, user_id=user, count=20, filters=filters)

        items = result["recommendations"]
        assert len(items) == 20
        assert all(i["category"] in categories for i in items)
        assert all(
            filters.get("min_price", 0) <= i["price"] <= filters.get("max_price", np.inf) for i in items
        )
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True)


def test_excluded_ids_and_purchased_items_are_left_out(
    serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    world = model.world

    def top20_purchases(user: int) -> set[str]:
        items, types = world.history(user)
        top = set(np.argsort(-(world.item_vectors @ world.user_vectors[user]))[:20].tolist())
        return {str(world.item_ids[i]) for i in items[types == 3] if int(i) in top}

    user = next(u for u in range(world.user_ids.size) if top20_purchases(u))
    user_id = str(world.user_ids[user])
    items, types = world.history(user)
    purchased = {str(world.item_ids[i]) for i in items[types == 3]}
    with_purchases = _recommend(serving, shop, user_id=user_id, count=20, exclude_purchased=False)
    shown = [i["item_id"] for i in with_purchases["recommendations"]]
    assert top20_purchases(user) <= set(shown)

    excluded = shown[:2]
    result = _recommend(serving, shop, user_id=user_id, count=20, filters={"exclude_ids": excluded})

    ids = {i["item_id"] for i in result["recommendations"]}
    assert len(ids) == 20
    assert not ids & set(excluded)
    assert not ids & purchased


def test_a_new_click_changes_the_next_response_and_is_a_cache_miss(
    client: TestClient, serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    before = _recommend(serving, shop, user_id="user_0001", count=10)
    cached = _recommend(serving, shop, user_id="user_0001", count=10)
    far = next(
        str(model.world.item_ids[i])
        for i in np.argsort(model.world.item_vectors @ model.world.user_vectors[0])  # least similar first
    )

    clicked = client.post(
        "/api/v1/interactions",
        json=[{"user_id": "user_0001", "item_id": far, "interaction_type": "add_to_cart"}],
        headers=shop.auth,
    )
    after = _recommend(serving, shop, user_id="user_0001", count=10)

    assert clicked.status_code == 200, clicked.text
    assert cached["metadata"]["cache_hit"] is True
    assert after["metadata"]["cache_hit"] is False
    assert [i["item_id"] for i in after["recommendations"]] != [
        i["item_id"] for i in before["recommendations"]
    ]
    title = str(model.world.titles[model.world.item_ids.tolist().index(far)])
    assert any(title in i["reason"] for i in after["recommendations"])


def test_a_cold_users_first_click_personalises_at_once(
    client: TestClient, serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    assert _recommend(serving, shop, user_id="visitor_1")["metadata"]["algorithm"] == "popular"

    client.post(
        "/api/v1/interactions",
        json={"user_id": "visitor_1", "item_id": "item_0042", "interaction_type": "click"},
        headers=shop.auth,
    )
    after = _recommend(serving, shop, user_id="visitor_1")

    assert after["metadata"]["algorithm"] == "lightgcn"
    category = str(model.world.categories[41])
    assert sum(i["category"] == category for i in after["recommendations"]) >= 8


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user_id": "u1", "count": 0}, "greater than or equal to 1"),
        ({"user_id": "u1", "count": 101}, "less than or equal to 100"),
        ({"user_id": "u1", "filters": {"min_price": -5}}, "greater than or equal to 0"),
        ({"user_id": "u1", "filters": {"min_price": 500, "max_price": 100}}, "must not exceed max_price"),
        ({"user_id": "bad id!"}, "should match pattern"),
        ({"user_id": "u1", "filters": {"exclude_ids": ["ok", " "]}}, "at least 1 character"),
        ({"user_id": "u1", "filters": {"exclude_ids": ["no spaces please"]}}, "should match pattern"),
        ({"user_id": "u1", "filters": {"colour": "red"}}, "Extra inputs are not permitted"),
        ({"count": 5}, "Field required"),
    ],
)
def test_bad_input_is_a_422_with_a_message(
    serving: TestClient, shop: Shop, model: PublishedModel, body: dict, message: str
) -> None:
    response = serving.post(URL, json=body, headers=shop.auth)

    assert response.status_code == 422
    assert message in response.text


def test_an_unknown_category_is_a_422_naming_the_known_ones(
    serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    response = serving.post(
        URL, json={"user_id": "u1", "filters": {"category": ["Laptops", "Toys"]}}, headers=shop.auth
    )

    assert response.status_code == 422
    assert "unknown category 'Toys'" in response.json()["detail"]
    assert "Laptops" in response.json()["detail"]


def test_credentials_are_required_and_checked(
    serving: TestClient, shop: Shop, client: TestClient, model: PublishedModel
) -> None:
    write_only = client.post(
        "/api/v1/api-keys", json={"name": "ingest", "permissions": ["write"]}, headers=shop.auth
    )
    reader = client.post(
        "/api/v1/api-keys", json={"name": "site", "permissions": ["read"]}, headers=shop.auth
    )
    body = {"user_id": "user_0001"}

    assert serving.post(URL, json=body).status_code == 401
    assert serving.post(URL, json=body, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert (
        serving.post(
            URL, json=body, headers={"Authorization": f"Bearer {write_only.json()['key']}"}
        ).status_code
        == 403
    )
    by_key = serving.post(URL, json=body, headers={"Authorization": f"Bearer {reader.json()['key']}"})
    assert by_key.status_code == 200 and by_key.json()["metadata"]["model_version"] == "lightgcn_v1"


def test_another_tenant_never_sees_this_tenants_model(
    serving: TestClient, shop: Shop, other_shop: Shop, model: PublishedModel
) -> None:
    theirs = serving.post(URL, json={"user_id": "user_0001", "count": 10}, headers=other_shop.auth).json()
    similar = serving.get("/api/v1/items/item_0001/similar", headers=other_shop.auth)
    health = serving.get("/api/v1/health", headers=other_shop.auth).json()

    assert theirs == {"recommendations": [], "metadata": theirs["metadata"]}
    assert theirs["metadata"]["algorithm"] == "popular" and theirs["metadata"]["model_version"] is None
    assert similar.status_code == 404
    assert (health["model_loaded"], health["model_version"], health["index_size"]) == (False, None, 0)


def test_a_tenant_without_a_model_gets_popular_items_from_its_catalogue(
    serving: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    world = synthetic.make_world(100, 10, seed=3)
    document = synthetic.popular_json(world, top_n=20)
    write_catalog_popular(
        aws_env.bucket(resources.DATA_BUCKET),
        shop.tenant_id,
        document,
    )

    result = _recommend(serving, shop, user_id="anyone", count=5)
    audio = _recommend(
        serving, shop, user_id="anyone", count=5, filters={"category": "Audio", "max_price": 400}
    )
    health = serving.get("/api/v1/health", headers=shop.auth).json()

    assert [i["item_id"] for i in result["recommendations"]] == [
        e["item_id"] for e in document["overall"][:5]
    ]
    assert result["metadata"] | {"latency_ms": 0, "recommendation_id": ""} == {
        "model_version": None,
        "latency_ms": 0,
        "cache_hit": False,
        "algorithm": "popular",
        "recommendation_id": "",
        "ab_test": None,
    }
    assert audio["recommendations"] and all(
        i["category"] == "Audio" and i["price"] <= 400 for i in audio["recommendations"]
    )
    assert health["model_loaded"] is False and health["status"] == "healthy"


def test_a_tenant_with_nothing_gets_an_empty_list_not_an_error(serving: TestClient, shop: Shop) -> None:
    result = _recommend(serving, shop, user_id="anyone", count=5, filters={"category": "Anything"})

    assert result["recommendations"] == []
    assert result["metadata"]["algorithm"] == "popular"


def test_feed_writes_and_erasures_move_the_users_activity_counter(
    client: TestClient, shop: Shop, model: PublishedModel
) -> None:
    import boto3

    from functions.ingestion.store.recent_activity import activity_key, slot_of, slot_versions

    def counter(user_id: str) -> int:
        item = boto3.client("dynamodb").get_item(
            TableName=LocalNames().table(resources.RECENT_EVENTS),
            Key=activity_key(shop.tenant_id),
            ConsistentRead=True,
        )
        return slot_versions(item.get("Item"))[slot_of(user_id)]

    assert counter("user_0002") == 0
    events = [
        {"user_id": "user_0002", "item_id": str(model.world.item_ids[n]), "interaction_type": "view"}
        for n in range(3)
    ]
    assert client.post("/api/v1/interactions", json=events, headers=shop.auth).status_code == 200
    assert counter("user_0002") == 1  # one write of the feed, one count: serving re-reads it once
    assert client.delete("/api/v1/users/user_0002", headers=shop.auth).status_code == 200
    assert counter("user_0002") == 2  # the erased feed is not served from any container's memory
