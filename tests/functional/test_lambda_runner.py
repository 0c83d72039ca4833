"""The in-process Lambda runner invokes the real handler strings with real event shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedrec_local.runner import LambdaRunner, LocalLambdaContext
from tests.functional.conftest import Shop

EVENTS = Path(__file__).parent / "events"


def test_api_handler_answers_an_api_gateway_event_through_mangum(shop: Shop) -> None:
    event = json.loads((EVENTS / "apigw_login.json").read_text())

    response = LambdaRunner().invoke("api", event)

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["tenant_id"] == shop.tenant_id


def test_serving_handler_answers_liveness(aws_env: object) -> None:
    event = json.loads((EVENTS / "apigw_login.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/health"
    event["requestContext"]["http"]["method"] = "GET"
    event["body"] = None

    response = LambdaRunner().invoke("serving", event)

    assert (response["statusCode"], json.loads(response["body"])) == (200, {"status": "healthy"})


def test_unknown_functions_are_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="no local function named 'nope'"):
        LambdaRunner().invoke("nope", {})


def test_context_counts_down() -> None:
    context = LocalLambdaContext(function_name="ingest", timeout_s=2)

    assert 0 < context.get_remaining_time_in_millis() <= 2000
    assert context.invoked_function_arn.endswith(":function:ingest")
