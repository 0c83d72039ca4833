"""Interactions that came in by CSV (API or drop folder) reach serving's per-user history.

A shop's own export, dated months ago, must count like a live event: what a shopper bought is not
offered again, with or without a model, whichever door the data came through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import resources
from functions.ingestion.feed import feed_packs
from functions.ingestion.store.events import RecentEvent, RecentEventsRepository
from functions.ingestion.tables import TIMESTAMP_TYPE
from functions.serving.store.storage import RecentEventsReader
from tests.fixtures.serving.artifacts import PublishedModel
from tests.functional.conftest import Shop
from tests.functional.ingestion.test_drop_folder import _deliver, _ticket

URL = "/api/v1/recommendations"
ITEMS = "item_id,title,category,price,brand,description\n" + "".join(
    f"item_{i},Item {i},{'Audio' if i % 2 else 'Laptops'},{10 + i}.0,Brand{i % 3},d\n" for i in range(8)
)


def _history(purchases: dict[str, str]) -> bytes:
    """January 2025: twenty shoppers view item_1 (the bestseller) and item_2; then the purchases."""
    rows = ["user_id,item_id,interaction_type,timestamp,rating"]
    for n in range(20):
        rows += [
            f"fan_{n},item_1,view,2025-01-{1 + n:02d}T10:00:00Z,",
            f"fan_{n},item_2,view,2025-01-02T10:00:00Z,",
        ]
    rows += [f"{user},{item},purchase,2025-02-03T12:00:00Z,5.0" for user, item in purchases.items()]
    return ("\n".join(rows) + "\n").encode()


def _ids(serving: TestClient, shop: Shop, user_id: str, **body: object) -> tuple[list[str], str]:
    response = serving.post(URL, json={"user_id": user_id, "count": 5, **body}, headers=shop.auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    return [i["item_id"] for i in answer["recommendations"]], answer["metadata"]["algorithm"]


def test_a_csv_purchase_is_excluded_on_the_popular_path(
    client: TestClient, serving: TestClient, shop: Shop
) -> None:
    # Given a shop without a model whose history export says alice bought the bestseller
    csv = {**shop.auth, "Content-Type": "text/csv"}
    assert client.post("/api/v1/items", headers=csv, content=ITEMS.encode()).status_code == 200
    uploaded = client.post("/api/v1/interactions", headers=csv, content=_history({"alice": "item_1"}))
    assert uploaded.json()["status"] == "success", uploaded.text

    # When alice and a shopper with no history ask
    alice, algorithm = _ids(serving, shop, "alice")
    stranger, _ = _ids(serving, shop, "stranger")

    # Then the bestseller leads for the stranger and is left out for alice (unless she asks for it)
    assert algorithm == "popular"
    # items with interactions lead; items without any only fill up the answer
    assert stranger[:2] == ["item_1", "item_2"]
    assert alice[0] == "item_2" and "item_1" not in alice
    assert _ids(serving, shop, "alice", exclude_purchased=False)[0][0] == "item_1"


def test_a_purchase_dropped_in_the_folder_is_excluded_too(
    client: TestClient, serving: TestClient, shop: Shop, aws_env: LocalNames
) -> None:
    s3, bucket = boto3.client("s3"), aws_env.bucket(resources.DATA_BUCKET)
    s3.put_object(Bucket=bucket, Key=_ticket(client, shop, "items")["key"], Body=ITEMS)
    _deliver()
    key = _ticket(client, shop, "interactions")["key"]
    s3.put_object(Bucket=bucket, Key=key, Body=_history({"carol": "item_1"}))
    _deliver()

    carol, algorithm = _ids(serving, shop, "carol")

    assert algorithm == "popular"
    assert _ids(serving, shop, "stranger")[0][0] == "item_1"
    assert "item_1" not in carol


def test_with_a_model_csv_history_personalises_and_its_purchases_are_excluded(
    client: TestClient, serving: TestClient, shop: Shop, model: PublishedModel
) -> None:
    world = model.world
    # A shopper the model was trained on buys, in a later export, the item it ranks first for her
    top, algorithm = _ids(serving, shop, "user_0001", exclude_purchased=False)
    assert algorithm == "lightgcn"
    # and a shopper the model never saw has an export of views and a purchase in one category
    audio = [str(i) for i in world.item_ids[world.categories == "Audio"][:4]]
    rows = ["user_id,item_id,interaction_type,timestamp", f"user_0001,{top[0]},purchase,2025-03-30T09:00:00Z"]
    rows += [f"walk_in,{item},view,2025-03-0{n + 1}T09:00:00Z" for n, item in enumerate(audio[1:])]
    rows += [f"walk_in,{audio[0]},purchase,2025-03-05T09:00:00Z"]
    response = client.post(
        "/api/v1/interactions",
        headers={**shop.auth, "Content-Type": "text/csv"},
        content="\n".join(rows).encode(),
    )
    assert response.status_code == 200, response.text

    after, _ = _ids(serving, shop, "user_0001")
    walk_in = serving.post(URL, json={"user_id": "walk_in", "count": 10}, headers=shop.auth).json()

    assert top[0] not in after
    assert walk_in["metadata"]["algorithm"] == "lightgcn"  # personalised from the export alone
    assert audio[0] not in {i["item_id"] for i in walk_in["recommendations"]}
    assert sum(i["category"] == "Audio" for i in walk_in["recommendations"]) >= 5
    assert any(i["reason"].startswith("Because you") for i in walk_in["recommendations"])


def test_a_bulk_pack_and_live_events_read_back_as_one_newest_first_feed(aws_env: LocalNames) -> None:
    # Given one pack of an export (a purchase long ago and a recent view) and two live events between
    client = boto3.client("dynamodb")
    table = aws_env.table(resources.RECENT_EVENTS)
    repository = RecentEventsRepository(client, table, timedelta(days=30))
    day = datetime(2025, 3, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    export = pa.table(
        {
            "user_id": ["ann", "ann"],
            "item_id": ["bought", "seen"],
            "interaction_type": ["purchase", "view"],
            "timestamp": pa.array([day, day + timedelta(days=9)], TIMESTAMP_TYPE),
        }
    )
    repository.put_packs("t1", feed_packs(export), "upload_1", now)
    live = [
        RecentEvent("ann", f"live_{n}", "click", day + timedelta(days=3 * n + 2), f"k{n}") for n in (0, 1)
    ]
    repository.put_many("t1", live, now)

    # When serving reads the three newest
    newest = RecentEventsReader(client, table).newest("t1", "ann", 3)

    # Then they come from the pack and the live entries alike, newest first
    assert [e.item_id for e in newest] == ["seen", "live_1", "live_0"]
    assert [e.item_id for e in RecentEventsReader(client, table).newest("t1", "ann", 10)][-1] == "bought"
    assert repository.delete_user("t1", "ann", erased_at=now) == 4  # events, not entries
