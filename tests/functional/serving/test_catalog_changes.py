"""Catalogue changes reach serving without retraining: details, availability, removals and new items.

The api app (uploads, ``DELETE /api/v1/items/{id}``) and the serving app run in-process on one moto
stack; the serving container re-checks the catalogue on every request here
(``EMBEDREC_CATALOG_CHECK_SECONDS=0``; the interval itself is tested in ``test_catalog_views``).
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from functions.serving.catalog import RECHECK_SECONDS
from tests.fixtures.serving.artifacts import PublishedModel
from tests.functional.analytics.conftest import add_models
from tests.functional.conftest import Shop
from tests.functional.serving.conftest import publish_for

URL = "/api/v1/recommendations"


@pytest.fixture(scope="module")
def small_world() -> synthetic.SyntheticWorld:
    return synthetic.make_world(400, 60, seed=5)


@pytest.fixture(autouse=True)
def _check_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDREC_CATALOG_CHECK_SECONDS", "0")


@pytest.fixture
def published(aws_env: LocalNames, shop: Shop, small_world: synthetic.SyntheticWorld) -> PublishedModel:
    return publish_for(aws_env, shop, small_world)


def _items_csv(rows: list[dict[str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _row(world: synthetic.SyntheticWorld, index: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "item_id": str(world.item_ids[index]),
        "title": str(world.titles[index]),
        "category": str(world.categories[index]),
        "price": float(world.prices[index]),
        "brand": str(world.brands[index]),
    }
    return row | changes


def _upload(client: TestClient, shop: Shop, rows: list[dict[str, object]]) -> None:
    response = client.post(
        "/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=_items_csv(rows)
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.text


def _upload_world(client: TestClient, shop: Shop, world: synthetic.SyntheticWorld) -> None:
    _upload(client, shop, [_row(world, index) for index in range(world.item_ids.size)])


def _recommend(serving: TestClient, shop: Shop, **body: object) -> dict[str, Any]:
    response = serving.post(URL, json=body, headers=shop.auth)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _ids(answer: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in answer["recommendations"]]


def test_new_prices_titles_and_categories_reach_filters_and_responses_without_retraining(
    client: TestClient, serving: TestClient, shop: Shop, published: PublishedModel
) -> None:
    world = published.world
    _upload_world(client, shop, world)
    first = _recommend(serving, shop, user_id="stranger", count=5)["recommendations"][0]
    index = int(list(world.item_ids).index(first["item_id"]))

    _upload(client, shop, [_row(world, index, title="Renamed", price=5.0, category="Clearance")])
    changed = _recommend(serving, shop, user_id="stranger", count=5)["recommendations"][0]
    cheap = _recommend(serving, shop, user_id="user_0001", count=10, filters={"max_price": 5.0})
    in_new_category = _recommend(
        serving, shop, user_id="user_0001", count=10, filters={"category": "clearance"}
    )
    in_old_category = _recommend(
        serving, shop, user_id="stranger", count=50, filters={"category": first["category"]}
    )

    assert changed["item_id"] == first["item_id"]
    assert (changed["title"], changed["price"], changed["category"]) == ("Renamed", 5.0, "Clearance")
    assert _ids(cheap) == [first["item_id"]]  # the price filter judges the current price
    assert _ids(in_new_category) == [first["item_id"]]
    assert first["item_id"] not in _ids(in_old_category)


def test_an_unavailable_item_is_served_by_no_path(
    client: TestClient, serving: TestClient, shop: Shop, published: PublishedModel
) -> None:
    world = published.world
    _upload_world(client, shop, world)
    personal = _ids(_recommend(serving, shop, user_id="user_0001", count=10))
    popular = _ids(_recommend(serving, shop, user_id="stranger", count=10))
    anchor = str(world.item_ids[0])
    similar = [
        i["item_id"]
        for i in serving.get(f"/api/v1/items/{anchor}/similar?count=10", headers=shop.auth).json()[
            "similar_items"
        ]
    ]
    hidden = {personal[0], popular[0], similar[0]}

    _upload(
        client,
        shop,
        [_row(world, list(world.item_ids).index(item_id), available="false") for item_id in sorted(hidden)],
    )

    personal_after = _ids(_recommend(serving, shop, user_id="user_0001", count=10))
    popular_after = _ids(_recommend(serving, shop, user_id="stranger", count=10))
    similar_after = serving.get(f"/api/v1/items/{anchor}/similar?count=10", headers=shop.auth).json()
    assert not hidden & set(personal_after) and len(personal_after) == 10
    assert not hidden & set(popular_after) and len(popular_after) == 10
    assert not hidden & {i["item_id"] for i in similar_after["similar_items"]}

    _upload(client, shop, [_row(world, list(world.item_ids).index(item_id)) for item_id in sorted(hidden)])
    assert personal[0] in _ids(_recommend(serving, shop, user_id="user_0001", count=10))  # available again


def test_an_a_b_variants_pinned_version_judges_the_current_catalogue_too(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    aws_env: LocalNames,
    small_world: synthetic.SyntheticWorld,
) -> None:
    publish_for(aws_env, shop, small_world, version="lightgcn_v1")
    publish_for(aws_env, shop, small_world, version="two_tower_v1", activate_now=False)
    _start_ab_test(client, shop)
    _upload_world(client, shop, small_world)
    user, before = _user_on(serving, shop, "two_tower_v1")

    _upload(
        client, shop, [_row(small_world, list(small_world.item_ids).index(_ids(before)[0]), available="no")]
    )
    after = _recommend(serving, shop, user_id=user, count=10)

    assert after["metadata"]["model_version"] == "two_tower_v1"
    assert _ids(before)[0] not in _ids(after) and len(_ids(after)) == 10


def _start_ab_test(client: TestClient, shop: Shop) -> None:
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


def _user_on(serving: TestClient, shop: Shop, version: str) -> tuple[str, dict[str, Any]]:
    """A trained user whom the A/B test serves with ``version``, and their answer."""
    for n in range(1, 60):
        answer = _recommend(serving, shop, user_id=f"user_{n:04d}", count=10)
        if answer["metadata"]["model_version"] == version:
            return f"user_{n:04d}", answer
    raise AssertionError(f"no user is served {version}")


def test_a_new_item_and_category_are_known_at_once_and_recommended_by_category(
    client: TestClient, serving: TestClient, shop: Shop, published: PublishedModel
) -> None:
    _upload_world(client, shop, published.world)
    drone = {"item_id": "drone_1", "title": "Sky Drone", "category": "Drones", "price": 300.0, "brand": "Fly"}

    _upload(client, shop, [drone])
    by_category = _recommend(serving, shop, user_id="user_0001", count=5, filters={"category": "drones"})
    stranger = _recommend(serving, shop, user_id="stranger", count=5, filters={"category": "Drones"})

    assert by_category["recommendations"] == [
        {
            "item_id": "drone_1",
            "title": "Sky Drone",
            "score": 0.0,
            "category": "Drones",
            "price": 300.0,
            "reason": "New in Drones",
        }
    ]
    assert _ids(stranger) == ["drone_1"]


def test_a_shop_without_a_model_serves_its_catalogue_by_category_and_availability(
    client: TestClient, serving: TestClient, shop: Shop
) -> None:
    rows = [
        {"item_id": f"cam_{n}", "title": f"Cam {n}", "category": "Cameras", "price": 100 + n, "brand": "B"}
        for n in range(3)
    ]
    _upload(client, shop, rows)

    served = _recommend(serving, shop, user_id="anyone", count=5, filters={"category": "cameras"})
    _upload(client, shop, [rows[2] | {"available": "false"}])
    after = _recommend(serving, shop, user_id="anyone", count=5, filters={"category": "Cameras"})

    assert _ids(served) == ["cam_2", "cam_1", "cam_0"]  # nobody interacted yet: newest first
    assert _ids(after) == ["cam_1", "cam_0"]


def test_delete_item_removes_it_from_every_answer_and_404s_after(
    client: TestClient, serving: TestClient, shop: Shop, published: PublishedModel
) -> None:
    world = published.world
    _upload_world(client, shop, world)
    top = _ids(_recommend(serving, shop, user_id="stranger", count=3))[0]

    deleted = client.delete(f"/api/v1/items/{top}", headers=shop.auth)
    again = client.delete(f"/api/v1/items/{top}", headers=shop.auth)

    assert deleted.status_code == 204, deleted.text
    assert again.status_code == 404
    assert top not in _ids(_recommend(serving, shop, user_id="stranger", count=10))


@pytest.mark.parametrize("item_id", ["sku/1", "sku:2@a.b"], ids=["slash", "colon-at-dot"])
def test_delete_reaches_items_with_odd_characters(client: TestClient, shop: Shop, item_id: str) -> None:
    _upload(client, shop, [{"item_id": item_id, "title": "T", "category": "C", "price": 1.0, "brand": "B"}])

    response = client.delete(f"/api/v1/items/{quote(item_id, safe='')}", headers=shop.auth)

    assert response.status_code == 204, response.text
    assert client.delete(f"/api/v1/items/{quote(item_id, safe='')}", headers=shop.auth).status_code == 404


def test_delete_item_needs_write_permission(client: TestClient, shop: Shop) -> None:
    key = client.post(
        "/api/v1/api-keys", headers=shop.auth, json={"name": "ro", "permissions": ["read"]}
    ).json()

    response = client.delete("/api/v1/items/anything", headers={"Authorization": f"Bearer {key['key']}"})

    assert response.status_code == 403


def test_similar_items_reach_an_item_id_with_a_slash(
    client: TestClient, serving: TestClient, shop: Shop
) -> None:
    _upload(
        client,
        shop,
        [
            {"item_id": f"sku/{n}", "title": f"T{n}", "category": "C", "price": 1.0, "brand": "B"}
            for n in (1, 2)
        ],
    )
    events = "user_id,item_id,interaction_type,timestamp\n" + "".join(
        f"u{n},sku/{n},purchase,2025-01-0{n}T00:00:00Z\n" for n in (1, 2)
    )
    stored = client.post(
        "/api/v1/interactions", headers={**shop.auth, "Content-Type": "text/csv"}, content=events.encode()
    )
    assert stored.status_code == 200, stored.text

    response = serving.get(f"/api/v1/items/{quote('sku/1', safe='')}/similar?count=5", headers=shop.auth)

    assert response.status_code == 200, response.text
    assert [item["item_id"] for item in response.json()["similar_items"]] == ["sku/2"]


def test_a_category_uploaded_a_moment_ago_is_known_before_the_next_scheduled_check(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    published: PublishedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBEDREC_CATALOG_CHECK_SECONDS", "60")
    _upload_world(client, shop, published.world)
    assert _recommend(serving, shop, user_id="user_0001", count=3)["recommendations"]  # the view is read
    drone = {"item_id": "drone_1", "title": "Sky Drone", "category": "Drones", "price": 300.0, "brand": "Fly"}
    _upload(client, shop, [drone])
    time.sleep(RECHECK_SECONDS + 0.1)  # re-checks are rate-limited per tenant, not per category

    known = _recommend(serving, shop, user_id="user_0001", count=3, filters={"category": "Drones"})
    unknown = serving.post(
        URL, json={"user_id": "user_0001", "filters": {"category": "Zeppelins"}}, headers=shop.auth
    )

    assert _ids(known) == ["drone_1"]
    assert unknown.status_code == 422 and "Drones" in unknown.text
