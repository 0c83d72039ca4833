"""The token buckets and the login lockout's arithmetic, without HTTP (fast, pure)."""

from __future__ import annotations

import pytest

from functions.common.errors import ServiceUnavailableError, TooManyRequestsError
from functions.identity.models import Plan
from functions.identity.throttling import PLAN_LIMITS, RateLimit, RequestQuotas, TokenBucket, stage_limit


def test_bucket_grants_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(RateLimit(rate_per_s=4, burst=2), tokens=2.0, updated=0.0)

    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.25)  # one token comes back after 1/rate
    assert bucket.take(0.25) == 0.0
    assert bucket.take(10.0) == 0.0  # a long pause refills no more than the burst
    assert bucket.take(10.0) == 0.0
    assert bucket.take(10.0) > 0.0


def test_quota_follows_a_plan_change_and_tenants_are_independent() -> None:
    now = [0.0]
    quotas = RequestQuotas(clock=lambda: now[0])
    free = PLAN_LIMITS[Plan.FREE]
    for _ in range(free.burst):
        quotas.take("tenant_a", Plan.FREE)
    with pytest.raises(TooManyRequestsError) as refused:
        quotas.take("tenant_a", Plan.FREE)

    assert refused.value.retry_after_s == 1
    quotas.take("tenant_b", Plan.FREE)  # another tenant has its own bucket
    quotas.take("tenant_a", Plan.PRO)  # an upgrade takes effect at once, with a full bucket
    quotas.clear()
    quotas.take("tenant_a", Plan.FREE)


def test_stage_limit_is_the_largest_plan_without_a_forecast() -> None:
    assert stage_limit() == PLAN_LIMITS[Plan.ENTERPRISE]


def test_stage_limit_sums_the_expected_tenants_plans_within_the_account_limit() -> None:
    from functions.identity.plans import ACCOUNT_RATE_LIMIT, parse_tenants_by_plan
    from functions.identity.plans import stage_limit as sized

    assert sized({Plan.PRO: 3, Plan.FREE: 100}).rate_per_s == 3 * 500 + 100 * 5
    assert sized({Plan.FREE: 1}) == PLAN_LIMITS[Plan.ENTERPRISE]  # never below the largest plan
    assert sized({Plan.ENTERPRISE: 50}).rate_per_s == ACCOUNT_RATE_LIMIT.rate_per_s
    assert parse_tenants_by_plan('{"pro": 2}') == {Plan.PRO: 2}
    for bad in ('{"gold": 1}', '{"pro": -1}', '{"pro": true}', "[1]"):
        with pytest.raises(ValueError, match="tenantsByPlan"):
            parse_tenants_by_plan(bad)


def test_the_walkthrough_shop_fits_its_plan() -> None:
    # The walkthrough's pro shop peaks at 450 requests a second.
    assert PLAN_LIMITS[Plan.PRO].rate_per_s >= 450


class _StoreDown:
    """A quota store whose DynamoDB is unavailable (a fault, not the code under test)."""

    def lease(self, tenant_id: str, limit: RateLimit, want: int, now: float) -> tuple[int, float]:
        raise ServiceUnavailableError("the quota store is unavailable, please retry")


def test_an_unavailable_quota_store_falls_back_to_the_containers_own_bucket() -> None:
    quotas = RequestQuotas(clock=lambda: 0.0, store=_StoreDown)
    free = PLAN_LIMITS[Plan.FREE]

    for _ in range(free.burst):  # served, not 503: an outage of the store does not stop the API
        assert quotas.take("tenant_a", Plan.FREE)
    with pytest.raises(TooManyRequestsError):  # and the limit still holds, per container
        quotas.take("tenant_a", Plan.FREE)
    assert not RequestQuotas(clock=lambda: 0.0, store=_StoreDown).take("t", Plan.FREE, blocking=False)
