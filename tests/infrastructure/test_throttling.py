"""API Gateway's stage throttling is sized from the plan table the functions enforce (plans.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdk import names
from cdk.app import build_app
from functions.identity.models import Plan
from functions.identity.plans import PLAN_RATES, stage_limit
from tests.infrastructure.helpers import Synth, make_stub_assets


def _stage_settings(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (stage,) = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    settings: dict[str, Any] = stage["Properties"]["DefaultRouteSettings"]
    return settings


def test_without_a_forecast_the_stage_admits_the_largest_plan(synth: Synth) -> None:
    largest = PLAN_RATES[Plan.ENTERPRISE]
    assert _stage_settings(synth.resources) == {
        "ThrottlingRateLimit": largest.rate_per_s,
        "ThrottlingBurstLimit": largest.burst,
    }
    assert all(limit.rate_per_s <= largest.rate_per_s for limit in PLAN_RATES.values())


def test_the_stage_is_sized_from_the_expected_tenants_per_plan(tmp_path: Path) -> None:
    # Given a deployment expecting 2 enterprise shops, 3 pro shops (such as the walkthrough's) and 100 free
    forecast = {"enterprise": 2, "pro": 3, "free": 100}
    app, stack = build_app(
        context={
            names.CTX_ASSETS_DIR: str(make_stub_assets(tmp_path / "assets")),
            names.CTX_TRAINING_IMAGE_REPOSITORY: "embedrec-training",
            names.CTX_TENANTS_BY_PLAN: json.dumps(forecast),
        },
        outdir=str(tmp_path / "out"),
    )
    app.synth()
    template = json.loads((tmp_path / "out" / f"{stack.artifact_id}.template.json").read_text())

    # Then every tenant can use its whole plan at once: the stage is the sum of their plans
    expected = stage_limit({Plan(name): count for name, count in forecast.items()})
    assert expected.rate_per_s == 2 * 2000 + 3 * 500 + 100 * 5
    assert _stage_settings(template["Resources"]) == {
        "ThrottlingRateLimit": expected.rate_per_s,
        "ThrottlingBurstLimit": expected.burst,
    }


def test_a_malformed_forecast_fails_synth(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tenantsByPlan"):
        build_app(
            context={
                names.CTX_ASSETS_DIR: str(make_stub_assets(tmp_path / "assets")),
                names.CTX_TRAINING_IMAGE_REPOSITORY: "embedrec-training",
                names.CTX_TENANTS_BY_PLAN: '{"gold": 3}',
            },
            outdir=str(tmp_path / "out"),
        )
