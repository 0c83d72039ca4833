"""The serving Lambda handler (Mangum + Powertools metrics flush) with a real API Gateway v2 event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedrec_local.runner import LambdaRunner
from tests.fixtures.serving.artifacts import PublishedModel
from tests.functional.conftest import Shop

EVENTS = Path(__file__).parents[1] / "events"


def test_recommendations_through_the_lambda_handler_flush_metrics(
    serving: object, shop: Shop, model: PublishedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads((EVENTS / "apigw_login.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/api/v1/recommendations"
    event["headers"]["authorization"] = f"Bearer {shop.token}"
    event["body"] = json.dumps({"user_id": "user_0001", "count": 3, "filters": {"category": "Audio"}})
    capsys.readouterr()

    response = LambdaRunner().invoke("serving", event)

    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert [item["category"] for item in body["recommendations"]] == ["Audio"] * 3
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"CloudWatchMetrics"' in line]
    assert any("RecommendationLatency" in document and "AnnSearchTime" in document for document in emf)
