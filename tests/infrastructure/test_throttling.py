"""API Gateway's throttling matches the per-plan quotas the functions enforce (functions.auth.throttling)."""

from __future__ import annotations

from typing import Any

from cdk import names
from functions.auth.throttling import PLAN_LIMITS, stage_limit
from tests.infrastructure.helpers import Synth


def test_stage_limit_is_the_largest_plan_budget() -> None:
    ceiling = stage_limit()

    assert (names.API_THROTTLE_RATE, names.API_THROTTLE_BURST) == (ceiling.rate_per_s, ceiling.burst)
    assert all(limit.rate_per_s <= ceiling.rate_per_s for limit in PLAN_LIMITS.values())


def test_synthesised_stage_carries_the_plan_ceiling(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    settings: dict[str, Any] = stage["Properties"]["DefaultRouteSettings"]

    assert settings == {
        "ThrottlingRateLimit": stage_limit().rate_per_s,
        "ThrottlingBurstLimit": stage_limit().burst,
    }
