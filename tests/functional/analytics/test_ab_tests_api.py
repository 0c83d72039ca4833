"""A/B tests through the api app on moto: lifecycle, every 422, tenant isolation and results."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.analytics import keys
from functions.analytics.domain import CounterDelta
from functions.analytics.serving_hooks import assign_variant
from tests.functional.analytics.conftest import NOW, TODAY, add_models, serve, upload_items
from tests.functional.conftest import Shop

SEED_BODY: dict[str, Any] = {
    "name": "LightGCN vs Two-Tower",
    "variants": [
        {"id": "control", "model_version": "lightgcn_v1", "traffic": 50},
        {"id": "treatment", "model_version": "two_tower_v1", "traffic": 50},
    ],
    "metric": "conversion_rate",
    "duration_days": 7,
}


def _create(client: TestClient, shop: Shop, body: dict[str, Any] | None = None) -> Any:
    return client.post("/api/admin/ab-tests", json=body or SEED_BODY, headers=shop.auth)


def _repos() -> tuple[Any, Any]:
    from functions.analytics.dependencies import ab_tests_repository, analytics_counters

    return ab_tests_repository(), analytics_counters()


def test_lifecycle_and_isolation(
    client: TestClient, shop: Shop, other_shop: Shop, pinned_clock: object
) -> None:
    add_models(shop.tenant_id, "lightgcn_v1", "two_tower_v1")
    created = _create(client, shop)
    assert created.status_code == 201, created.text
    test = created.json()
    assert test["status"] == "running" and test["control"] == "control"
    assert test["id"].startswith("ab_") and test["ends_at"].startswith("2025-01-17T12:00")
    assert [v["id"] for v in test["variants"]] == ["control", "treatment"]

    assert client.get("/api/admin/ab-tests", headers=shop.auth).json()["ab_tests"] == [test]
    assert client.get(f"/api/admin/ab-tests/{test['id']}", headers=shop.auth).json() == test

    # another tenant cannot see, stop or read the results of it
    assert client.get("/api/admin/ab-tests", headers=other_shop.auth).json() == {"ab_tests": []}
    for method, path in (
        ("GET", f"/api/admin/ab-tests/{test['id']}"),
        ("POST", f"/api/admin/ab-tests/{test['id']}/stop"),
        ("GET", f"/api/admin/ab-tests/{test['id']}/results"),
    ):
        assert client.request(method, path, headers=other_shop.auth).status_code == 404, path
    # and its own registry does not have the first shop's models
    assert _create(client, other_shop).status_code == 422

    # a second running test overlaps: 422 naming the running one
    overlap = _create(client, shop)
    assert overlap.status_code == 422 and test["id"] in overlap.json()["detail"]

    stopped = client.post(f"/api/admin/ab-tests/{test['id']}/stop", headers=shop.auth)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    again = client.post(f"/api/admin/ab-tests/{test['id']}/stop", headers=shop.auth)
    assert again.json()["stopped_at"] == stopped.json()["stopped_at"]  # idempotent
    assert assign_variant(_repos()[0], shop.tenant_id, "user_0001", NOW) is None

    # once stopped, a new test may start
    assert _create(client, shop, {**SEED_BODY, "name": "second"}).status_code == 201
    listed = client.get("/api/admin/ab-tests", headers=shop.auth).json()["ab_tests"]
    assert {t["status"] for t in listed} == {"running", "stopped"}


# Each case: a change to the walkthrough's body, and a phrase the 422 must contain. One fixture for all
# (the moto setup is the expensive part).
BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"variants": [{"id": "control", "model_version": "lightgcn_v1", "traffic": 100}]}, "at least 2"),
    (
        {
            "variants": [
                {"id": "a", "model_version": "lightgcn_v1", "traffic": 50},
                {"id": "b", "model_version": "two_tower_v1", "traffic": 40},
            ]
        },
        "sum to 100, got 90",
    ),
    (
        {
            "variants": [
                {"id": "a", "model_version": "lightgcn_v1", "traffic": 50},
                {"id": "a", "model_version": "two_tower_v1", "traffic": 50},
            ]
        },
        "repeated: a",
    ),
    (
        {
            "variants": [
                {"id": "control", "model_version": "lightgcn_v1", "traffic": 50},
                {"id": "treatment", "model_version": "lightgcn_v9", "traffic": 50},
            ]
        },
        "'lightgcn_v9' does not exist",
    ),
    (
        {
            "variants": [
                {"id": "a#b", "model_version": "lightgcn_v1", "traffic": 50},
                {"id": "c", "model_version": "two_tower_v1", "traffic": 50},
            ]
        },
        "pattern",
    ),
    ({"metric": "clicks"}, "conversion_rate"),
    ({"duration_days": 0}, "greater than or equal to 1"),
    ({"duration_days": 91}, "less than or equal to 90"),
    ({"name": ""}, "at least 1 character"),
]


def test_bad_tests_are_422(client: TestClient, shop: Shop) -> None:
    add_models(shop.tenant_id, "lightgcn_v1", "two_tower_v1")
    for change, message in BAD_BODIES:
        response = _create(client, shop, {**SEED_BODY, **change})
        assert response.status_code == 422, change
        assert message in response.text, (change, response.text)
    assert client.get("/api/admin/ab-tests", headers=shop.auth).json() == {"ab_tests": []}


def test_only_tenant_admins_manage_tests(client: TestClient, shop: Shop) -> None:
    from tests.functional.conftest import make_shop

    member = make_shop(client, "membershop", "member@membershop.example", role="member")
    assert _create(client, member).status_code == 403
    assert client.post("/api/admin/ab-tests", json=SEED_BODY).status_code == 401


def test_results_on_crafted_counters(client: TestClient, shop: Shop, pinned_clock: object) -> None:
    # Given a CTR test whose counters are the unit test's hand-computed case:
    # control 100 clicks / 1000 impressions, treatment 130 / 1000 -> p = 0.0355, winner treatment
    add_models(shop.tenant_id, "lightgcn_v1", "two_tower_v1")
    test = _create(client, shop, {**SEED_BODY, "metric": "click_through_rate"}).json()
    _tests, counters = _repos()
    counters.apply(
        shop.tenant_id,
        {
            keys.day_key(TODAY, 0): CounterDelta(
                {
                    keys.variant_attribute(test["id"], "control", "impressions"): Decimal(1000),
                    keys.variant_attribute(test["id"], "control", "clicks"): Decimal(100),
                    keys.variant_attribute(test["id"], "treatment", "impressions"): Decimal(1000),
                    keys.variant_attribute(test["id"], "treatment", "clicks"): Decimal(130),
                    keys.variant_attribute(test["id"], "treatment", "conversions"): Decimal(3),
                    keys.variant_attribute(test["id"], "treatment", "revenue"): Decimal("29.97"),
                    keys.variant_attribute("ab_other", "control", "clicks"): Decimal(999),
                }
            )
        },
    )
    results = client.get(f"/api/admin/ab-tests/{test['id']}/results", headers=shop.auth).json()
    control, treatment = results["variants"]
    assert (control["id"], control["impressions"], control["clicks"], control["lift"]) == (
        "control",
        1000,
        100,
        None,
    )
    assert (treatment["impressions"], treatment["clicks"], treatment["conversions"]) == (1000, 130, 3)
    assert treatment["click_through_rate"] == pytest.approx(0.13)
    assert treatment["conversion_rate"] == pytest.approx(0.003)
    assert (treatment["revenue"], treatment["revenue_per_impression"]) == (29.97, pytest.approx(0.02997))
    lift = treatment["lift"]
    assert lift["metric"] == "click_through_rate"
    assert lift["relative_lift"] == pytest.approx(0.30)
    assert lift["p_value"] == pytest.approx(0.03549, abs=1e-4)
    assert (lift["ci_low"], lift["ci_high"]) == (
        pytest.approx(0.002068, abs=1e-5),
        pytest.approx(0.057932, abs=1e-5),
    )
    assert lift["significant"] and results["winner"] == "treatment" and results["alpha"] == 0.05


def test_impressions_and_attribution_round_trip(client: TestClient, shop: Shop, pinned_clock: object) -> None:
    # Given a running test and 40 users served two items each through serving's hooks
    add_models(shop.tenant_id, "lightgcn_v1", "two_tower_v1")
    upload_items(client, shop)
    test = _create(client, shop).json()
    tests, counters = _repos()
    served = NOW + timedelta(minutes=5)
    assigned: dict[str, str] = {}
    recommendation_ids: dict[str, str] = {}
    for n in range(40):
        user = f"user_{n:04d}"
        assignment = assign_variant(tests, shop.tenant_id, user, served)
        assert assignment is not None and assignment.test_id == test["id"]
        assert (
            assignment.model_version
            == {"control": "lightgcn_v1", "treatment": "two_tower_v1"}[assignment.variant]
        )
        assigned[user] = assignment.variant
        recommendation_ids[user] = serve(
            counters,
            shop.tenant_id,
            ["item_0001", "item_0002"],
            variant=assignment.variant,
            test_id=assignment.test_id,
            now=served,
        )
    # When every user clicks item_0001 with its recommendation id, and even users also buy it;
    # plus one source-only purchase (no recommendation id): attributed to the user's assigned variant
    events: list[dict[str, Any]] = []
    for n in range(40):
        context = {"source": "recommendations", "recommendation_id": recommendation_ids[f"user_{n:04d}"]}
        events.append(
            {
                "user_id": f"user_{n:04d}",
                "item_id": "item_0001",
                "interaction_type": "click",
                "timestamp": "2025-01-10T12:30:00Z",
                "context": context,
            }
        )
        if n % 2 == 0:
            events.append(
                {
                    "user_id": f"user_{n:04d}",
                    "item_id": "item_0001",
                    "interaction_type": "purchase",
                    "timestamp": "2025-01-10T12:31:00Z",
                    "context": {**context, "revenue": 10},
                }
            )
    events.append(
        {
            "user_id": "user_0001",
            "item_id": "item_0003",
            "interaction_type": "purchase",
            "timestamp": "2025-01-10T12:40:00Z",
            "context": {"source": "recommendations", "revenue": 5},
        }
    )
    assert client.post("/api/v1/interactions", json=events, headers=shop.auth).status_code == 200

    # Then each variant has exactly its users' impressions, clicks, purchases and revenue
    results = client.get(f"/api/admin/ab-tests/{test['id']}/results", headers=shop.auth).json()
    users = Counter(assigned.values())
    buyers = Counter(v for user, v in assigned.items() if int(user[-4:]) % 2 == 0)
    assert set(users) == {"control", "treatment"}
    for variant in results["variants"]:
        vid = variant["id"]
        extra = 1 if assigned["user_0001"] == vid else 0
        assert variant["impressions"] == 2 * users[vid]
        assert variant["recommendation_requests"] == users[vid]
        assert variant["clicks"] == users[vid]
        assert variant["conversions"] == buyers[vid] + extra
        assert variant["revenue"] == 10 * buyers[vid] + 5 * extra
    summary = client.get("/api/v1/analytics/summary?days=1", headers=shop.auth).json()
    assert (summary["recommendations_served"], summary["clicks"], summary["conversions"]) == (80, 40, 21)
    assert summary["revenue"] == 205.0
