"""Attribution on ingestion, the analytics summary and top products, through the api app on moto."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.functional.analytics.conftest import NOW, TODAY, serve, upload_items
from tests.functional.conftest import Shop


def _counters() -> Any:
    from functions.analytics.dependencies import analytics_counters

    return analytics_counters()


def _events(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"user_id": "user_0001", "timestamp": "2025-01-10T11:00:00Z", **event} for event in events]


def test_interactions_from_recommendations_are_attributed_once(
    client: TestClient, shop: Shop, other_shop: Shop, pinned_clock: object
) -> None:
    # Given a catalogue and one served response of two items (serving's hook)
    upload_items(client, shop)
    served = serve(_counters(), shop.tenant_id, ["item_0001", "item_0002"], now=NOW - timedelta(hours=2))
    # When the shop sends the walkthrough's Step 3.3 events (and some that recommendations did not earn)
    events = _events(
        {
            "event_id": "e1",
            "item_id": "item_0001",
            "interaction_type": "click",
            "context": {"source": "recommendations", "position": 1, "recommendation_id": served},
        },
        {
            "event_id": "e2",
            "item_id": "item_0001",
            "interaction_type": "purchase",
            "context": {"source": "recommendations", "revenue": 999.99},
        },
        {
            "event_id": "e3",
            "item_id": "item_0003",
            "interaction_type": "view",
            "context": {"source": "recommendations"},
        },
        {
            "event_id": "e4",
            "item_id": "item_0003",
            "interaction_type": "purchase",
            "context": {"source": "search", "revenue": 249.99},
        },
    )
    first = client.post("/api/v1/interactions", json=events, headers=shop.auth)
    retry = client.post("/api/v1/interactions", json=events, headers=shop.auth)
    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.json()["duplicates"] == 4

    # Then the summary counts one click and one purchase from the two impressions, once
    summary = client.get("/api/v1/analytics/summary?days=7", headers=shop.auth).json()
    expected = {
        "recommendations_served": 2,
        "recommendation_requests": 1,
        "clicks": 1,
        "conversions": 1,
        "click_through_rate": 0.5,
        "conversion_rate": 0.5,
        "revenue": 999.99,
    }
    assert {key: summary[key] for key in expected} == expected
    assert (summary["days"], summary["start_date"], summary["end_date"]) == (7, "2025-01-04", TODAY)
    assert [day["date"] for day in summary["daily"]][-1] == TODAY and len(summary["daily"]) == 7
    assert {key: summary["daily"][-1][key] for key in expected} == expected
    assert all(day["recommendations_served"] == 0 for day in summary["daily"][:-1])

    # And top products carry the catalogue's titles, in the walkthrough's shape
    top = client.get("/api/v1/analytics/top-products?days=30", headers=shop.auth).json()
    assert top == {
        "top_products": [
            {
                "item_id": "item_0001",
                "title": "iPhone 15 Pro",
                "recommendation_count": 1,
                "click_through_rate": 1.0,
                "conversion_rate": 1.0,
                "revenue": 999.99,
            },
            {
                "item_id": "item_0002",
                "title": "MacBook Pro",
                "recommendation_count": 1,
                "click_through_rate": 0.0,
                "conversion_rate": 0.0,
                "revenue": 0.0,
            },
        ]
    }

    # And another tenant sees none of it: zeros, not errors
    theirs = client.get("/api/v1/analytics/summary", headers=other_shop.auth).json()
    assert theirs["recommendations_served"] == theirs["clicks"] == 0 and theirs["revenue"] == 0
    assert len(theirs["daily"]) == 30
    empty = client.get("/api/v1/analytics/top-products", headers=other_shop.auth).json()
    assert empty == {"top_products": []}


def test_csv_uploads_are_attributed_and_crafted_numbers_add_up(
    client: TestClient, shop: Shop, pinned_clock: object
) -> None:
    # Given 40 impressions over two days: item_0001 shown 30 times, item_0002 10 times
    upload_items(client, shop)
    counters = _counters()
    served: list[str] = []
    for n in range(10):
        day = NOW - timedelta(days=1 if n < 5 else 0)
        served.append(serve(counters, shop.tenant_id, ["item_0001", "item_0002"], now=day))
        serve(counters, shop.tenant_id, ["item_0001"], now=day)
        serve(counters, shop.tenant_id, ["item_0001"], now=day)
    # When a CSV brings 4 clicks and 1 purchase from recommendations (yesterday and today), plus noise
    csv = (
        b"user_id,item_id,interaction_type,timestamp,source,revenue,recommendation_id\n"
        b"u1,item_0001,click,2025-01-09T10:00:00Z,recommendations,,\n"
        b"u2,item_0001,click,2025-01-09T10:00:00Z,,," + served[1].encode() + b"\n"
        b"u3,item_0002,click,2025-01-10T09:00:00Z,recommendations,,\n"
        b"u3,item_0002,purchase,2025-01-10T09:05:00Z,recommendations,2499.99,\n"
        b"u4,item_0001,click,2025-01-10T10:00:00Z,recommendations,,\n"
        b"u5,item_0001,click,2025-01-10T10:00:00Z,,,rec_unknown\n"
        b"u6,item_0003,purchase,2025-01-10T10:00:00Z,email,249.99,\n"
    )
    upload = client.post(
        "/api/v1/interactions", files={"file": ("i.csv", csv, "text/csv")}, headers=shop.auth
    )
    assert upload.status_code == 200 and upload.json()["accepted"] == 7

    # Then: 40 impressions, 4 clicks (CTR 0.1), 1 purchase (0.025), 2499.99 revenue
    summary = client.get("/api/v1/analytics/summary?days=2", headers=shop.auth).json()
    assert (summary["recommendations_served"], summary["recommendation_requests"]) == (40, 30)
    assert (summary["clicks"], summary["conversions"], summary["revenue"]) == (4, 1, 2499.99)
    assert (summary["click_through_rate"], summary["conversion_rate"]) == (0.1, 0.025)
    yesterday, today = summary["daily"]
    assert (yesterday["recommendations_served"], yesterday["clicks"], yesterday["conversions"]) == (20, 2, 0)
    assert (today["recommendations_served"], today["clicks"], today["conversions"]) == (20, 2, 1)
    # a one-day window sees today only
    assert client.get("/api/v1/analytics/summary?days=1", headers=shop.auth).json()["clicks"] == 2

    top = client.get("/api/v1/analytics/top-products?days=30&limit=1", headers=shop.auth).json()
    assert top["top_products"] == [
        {
            "item_id": "item_0001",
            "title": "iPhone 15 Pro",
            "recommendation_count": 30,
            "click_through_rate": 0.1,
            "conversion_rate": 0.0,
            "revenue": 0.0,
        }
    ]
    both = client.get("/api/v1/analytics/top-products?limit=5", headers=shop.auth).json()["top_products"]
    assert [
        (p["item_id"], p["recommendation_count"], p["click_through_rate"], p["conversion_rate"], p["revenue"])
        for p in both
    ] == [
        ("item_0001", 30, 0.1, 0.0, 0.0),
        ("item_0002", 10, 0.1, 0.1, 2499.99),
    ]


def test_bad_windows_are_422(client: TestClient, shop: Shop) -> None:
    for path in (
        "/api/v1/analytics/summary?days=0",
        "/api/v1/analytics/summary?days=366",
        "/api/v1/analytics/summary?days=many",
        "/api/v1/analytics/top-products?days=400",
        "/api/v1/analytics/top-products?limit=0",
        "/api/v1/analytics/top-products?limit=101",
    ):
        assert client.get(path, headers=shop.auth).status_code == 422, path
    assert client.get("/api/v1/analytics/summary?days=365", headers=shop.auth).status_code == 200
    assert client.get("/api/v1/analytics/summary").status_code == 401


def test_a_failed_attribution_rolls_the_upload_back_and_a_retry_counts_once(
    client: TestClient, shop: Shop, pinned_clock: object
) -> None:
    # Given a counter row whose "clicks" is not a number, so that ADD on it fails mid-batch
    counters = _counters()
    counters._client.put_item(
        TableName=counters._table_name,
        Item={
            "tenant_id": {"S": shop.tenant_id},
            "counter_key": {"S": f"item#{TODAY}#item_0002"},
            "clicks": {"S": "broken"},
        },
    )
    events = _events(
        {
            "event_id": "k1",
            "item_id": "item_0001",
            "interaction_type": "click",
            "context": {"source": "recommendations"},
        },
        {
            "event_id": "k2",
            "item_id": "item_0002",
            "interaction_type": "click",
            "context": {"source": "recommendations"},
        },
    )
    # When the upload's attribution fails: 503, nothing counted, the event ids released
    failed = client.post("/api/v1/interactions", json=events, headers=shop.auth)
    assert failed.status_code == 503, failed.text
    assert client.get("/api/v1/analytics/summary?days=1", headers=shop.auth).json()["clicks"] == 0
    # Then, once the store is healthy, the retry is accepted (not a duplicate) and counted once
    counters._client.delete_item(
        TableName=counters._table_name,
        Key={"tenant_id": {"S": shop.tenant_id}, "counter_key": {"S": f"item#{TODAY}#item_0002"}},
    )
    retry = client.post("/api/v1/interactions", json=events, headers=shop.auth)
    assert retry.status_code == 200 and retry.json()["duplicates"] == 0
    assert client.get("/api/v1/analytics/summary?days=1", headers=shop.auth).json()["clicks"] == 2
