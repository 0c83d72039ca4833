"""Serving under S3 and DynamoDB failures: readers keep getting answers, never a 500."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from functions.common import aws
from tests.functional.conftest import Shop
from tests.functional.faults.conftest import failing
from tests.functional.serving.conftest import REFRESH_SECONDS, publish_for


def test_a_warm_model_keeps_answering_through_registry_s3_and_events_outages(
    serving: TestClient, shop: Shop, aws_env: LocalNames, world: synthetic.SyntheticWorld
) -> None:
    publish_for(aws_env, shop, world)
    body = {"user_id": "user_0001", "count": 5}
    warm = serving.post("/api/v1/recommendations", headers=shop.auth, json=body).json()
    time.sleep(REFRESH_SECONDS * 2)  # the next request re-reads the registry pointer

    with (
        failing(aws.dynamodb_client(), {"Query": 50, "GetItem": 50}),
        failing(aws.s3_client(), {"GetObject": 50}),
    ):
        answers = [serving.post("/api/v1/recommendations", headers=shop.auth, json=body) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json()["metadata"]["model_version"] == warm["metadata"]["model_version"] for a in answers)
    assert all(len(a.json()["recommendations"]) == 5 for a in answers)


def test_a_cold_container_with_s3_down_answers_popular_items_not_an_error(
    serving: TestClient, shop: Shop, aws_env: LocalNames, world: synthetic.SyntheticWorld
) -> None:
    publish_for(aws_env, shop, world)

    with failing(aws.s3_client(), {"GetObject": 100}):
        answer = serving.post("/api/v1/recommendations", headers=shop.auth, json={"user_id": "user_0001"})
        health = serving.get("/api/v1/health", headers=shop.auth)

    assert answer.status_code == 200 and answer.json()["metadata"]["algorithm"] == "popular"
    assert health.status_code == 200 and health.json()["model_loaded"] is False
