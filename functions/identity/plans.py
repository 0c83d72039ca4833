"""What each plan allows, in one table: request rates (per tenant, across all containers) and API keys.

The functions enforce the rates (``functions.identity.throttling``: a DynamoDB token bucket per tenant that
every container leases from); the CDK app sizes the HTTP API stage's throttling from the same table and
the expected tenants per plan (``stage_limit``). A pro shop such as the walkthrough's (450 requests a
second at peak) fits its plan's 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from functions.identity.models import API_KEY_LIMITS, Plan


@dataclass(frozen=True)
class RateLimit:
    """A sustained rate and the burst a caller may spend at once (a token bucket's refill and size)."""

    rate_per_s: float
    burst: int


PLAN_RATES: Mapping[Plan, RateLimit] = MappingProxyType(
    {
        Plan.FREE: RateLimit(rate_per_s=5, burst=10),
        Plan.STARTER: RateLimit(rate_per_s=50, burst=100),
        Plan.PRO: RateLimit(rate_per_s=500, burst=1000),
        Plan.ENTERPRISE: RateLimit(rate_per_s=2000, burst=4000),
    }
)
PLAN_API_KEYS: Mapping[Plan, int] = MappingProxyType(dict(API_KEY_LIMITS))

#: API Gateway's default account-level throttle per region (a quota increase raises it).
ACCOUNT_RATE_LIMIT = RateLimit(rate_per_s=10_000, burst=5_000)


def stage_limit(tenants_by_plan: Mapping[Plan, int] | None = None) -> RateLimit:
    """The HTTP API stage's throttling for a deployment expecting ``tenants_by_plan`` tenants.

    The sum of their plans' rates and bursts — every tenant can use its whole plan at once — but never
    below the largest plan (one tenant of it must not be cut short by the stage) nor above API Gateway's
    account-level limit. Without a forecast: one tenant of the largest plan.
    """
    largest = max(PLAN_RATES.values(), key=lambda limit: limit.rate_per_s)
    counts = dict(tenants_by_plan or {})
    rate = sum(PLAN_RATES[plan].rate_per_s * max(0, count) for plan, count in counts.items())
    burst = sum(PLAN_RATES[plan].burst * max(0, count) for plan, count in counts.items())
    return RateLimit(
        rate_per_s=min(ACCOUNT_RATE_LIMIT.rate_per_s, max(largest.rate_per_s, rate)),
        burst=int(min(ACCOUNT_RATE_LIMIT.burst, max(largest.burst, burst))),
    )


def parse_tenants_by_plan(value: object) -> dict[Plan, int]:
    """Context ``embedrec:tenantsByPlan`` (``{"pro": 3, "free": 200}``, or its JSON text) → counts."""
    if value is None or value == "":
        return {}
    raw = json.loads(value) if isinstance(value, str) else value
    if not isinstance(raw, dict):
        raise ValueError(f"tenantsByPlan must map plan names to counts, got {value!r}")
    counts: dict[Plan, int] = {}
    for name, count in raw.items():
        try:
            plan = Plan(str(name))
        except ValueError:
            known = [p.value for p in Plan]
            raise ValueError(f"tenantsByPlan: unknown plan {name!r} (plans: {known})") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"tenantsByPlan: the count of {name!r} must be a whole number >= 0: {count!r}")
        counts[plan] = count
    return counts
