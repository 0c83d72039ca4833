"""A/B tests reach serving: each user gets its arm's model, and responses count as impressions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.event_sources import SqsEventSource
from embedrec_local.provision import LocalNames
from tests.functional.analytics.conftest import add_models
from tests.functional.conftest import Shop
from tests.functional.serving.conftest import publish_for


def test_users_get_their_arms_model_and_impressions_are_counted_per_variant(
    client: TestClient,
    serving: TestClient,
    shop: Shop,
    aws_env: LocalNames,
    world: synthetic.SyntheticWorld,
    impressions: SqsEventSource,
) -> None:
    # Given an active lightgcn_v1, a trained two_tower_v1, and a 50/50 test between them
    publish_for(aws_env, shop, world, version="lightgcn_v1")
    publish_for(aws_env, shop, world, version="two_tower_v1", activate_now=False)
    add_models(shop.tenant_id, "lightgcn_v1", "two_tower_v1")
    created = client.post(
        "/api/admin/ab-tests",
        headers=shop.auth,
        json={
            "name": "LightGCN vs Two-Tower",
            "variants": [
                {"id": "control", "model_version": "lightgcn_v1", "traffic": 50},
                {"id": "treatment", "model_version": "two_tower_v1", "traffic": 50},
            ],
            "metric": "conversion_rate",
            "duration_days": 7,
        },
    )
    assert created.status_code == 201, created.text
    test_id = created.json()["id"]

    # When 40 users ask for 5 recommendations each
    answers = [
        serving.post(
            "/api/v1/recommendations", headers=shop.auth, json={"user_id": f"user_{n:04d}", "count": 5}
        ).json()
        for n in range(1, 41)
    ]

    # Then every response names its arm and comes from that arm's model, and both arms are used
    arms = {a["metadata"]["ab_test"]["variant"]: a["metadata"]["model_version"] for a in answers}
    assert arms == {"control": "lightgcn_v1", "treatment": "two_tower_v1"}
    assert all(a["metadata"]["ab_test"]["test_id"] == test_id for a in answers)
    again = serving.post(
        "/api/v1/recommendations", headers=shop.auth, json={"user_id": "user_0001", "count": 5}
    )
    assert again.json()["metadata"]["ab_test"] == answers[0]["metadata"]["ab_test"]  # sticky per user

    # And, once the impressions queue is delivered, they land in the test's results and the summary
    assert impressions.drain()
    results = client.get(f"/api/admin/ab-tests/{test_id}/results", headers=shop.auth).json()
    impressions = {v["id"]: v["impressions"] for v in results["variants"]}
    served = sum(len(a["recommendations"]) for a in answers) + len(again.json()["recommendations"])
    assert sum(impressions.values()) == served and all(impressions.values())
    summary = client.get("/api/v1/analytics/summary?days=1", headers=shop.auth).json()
    assert summary["recommendations_served"] == served
