"""Request quotas per plan and the brute-force lockout of logins (issue 8).

Two limits, both answered with ``TooManyRequestsError`` (429 + ``Retry-After``):

* **Plan quotas** — every tenant has a requests-per-second budget set by its plan (``PLAN_LIMITS``),
  enforced by a token bucket in the shared caller resolution, so the api and serving functions both
  apply it. The buckets live in the container: the limit holds per process. The cluster-wide ceiling
  is API Gateway's stage throttling (``cdk/constructs/api.py``), set to the largest plan's budget
  (HTTP APIs have no usage plans, so per-tenant limits can only be enforced by the functions).
  All credentials of a tenant (logins and API keys) draw on one bucket: a new key adds no budget.
* **Login lockout** — after ``max_failures`` wrong passwords for one e-mail within ``window``, every
  further attempt for that e-mail (even with the right password) is refused until the window that
  began with the first failure has passed. The counter is in DynamoDB (the ``event_ids`` table, key
  ``login#{email}``, expiring through its TTL), so all containers share it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from functions.common.errors import TooManyRequestsError
from functions.common.models import Plan
from functions.repositories._dynamo import is_condition_failure, unavailable_on_failure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class RateLimit:
    """A sustained rate and the burst a caller may spend at once (a token bucket's refill and size)."""

    rate_per_s: float
    burst: int


PLAN_LIMITS: Mapping[Plan, RateLimit] = MappingProxyType(
    {
        Plan.FREE: RateLimit(rate_per_s=5, burst=10),
        Plan.STARTER: RateLimit(rate_per_s=20, burst=40),
        Plan.PRO: RateLimit(rate_per_s=100, burst=200),
        Plan.ENTERPRISE: RateLimit(rate_per_s=200, burst=400),
    }
)
# POST /api/v1/auth/login at API Gateway (all callers together): generous for people, slow for scripts.
LOGIN_ROUTE_LIMIT = RateLimit(rate_per_s=10, burst=20)

LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=5)

_MAX_BUCKETS = 10_000


def stage_limit() -> RateLimit:
    """The largest plan's budget: API Gateway's stage throttling, so no plan is cut short by it."""
    return RateLimit(
        rate_per_s=max(limit.rate_per_s for limit in PLAN_LIMITS.values()),
        burst=max(limit.burst for limit in PLAN_LIMITS.values()),
    )


@dataclass
class TokenBucket:
    """Holds up to ``limit.burst`` tokens, refilled at ``limit.rate_per_s``; one request takes one."""

    limit: RateLimit
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.limit.rate_per_s


@dataclass
class RequestQuotas:
    """Per-tenant token buckets of one container, sized by the tenant's plan."""

    limits: Mapping[Plan, RateLimit] = field(default_factory=lambda: PLAN_LIMITS)
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, tenant_id: str, plan: Plan) -> None:
        """Count one request of the tenant; ``TooManyRequestsError`` when its budget is spent."""
        limit = self.limits[plan]
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(tenant_id)
            if bucket is None or bucket.limit != limit:  # new tenant, or its plan changed
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._buckets.clear()
                bucket = self._buckets[tenant_id] = TokenBucket(limit, float(limit.burst), now)
            wait_s = bucket.take(now)
        if wait_s > 0.0:
            raise TooManyRequestsError(
                f"the {plan.value} plan allows {limit.rate_per_s:g} requests per second "
                f"(bursts of {limit.burst}); slow down",
                retry_after_s=math.ceil(wait_s),
            )

    def clear(self) -> None:
        """Forget every bucket (a cold container)."""
        with self._lock:
            self._buckets.clear()


@dataclass(frozen=True)
class LoginFailures:
    """Failed logins of one e-mail in the current window."""

    count: int
    window_start: float  # epoch seconds of the window's first failure


class LoginFailureRepository:
    """Failed-login counters in the ``event_ids`` table (key ``login#{email}``; expire by TTL)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    @staticmethod
    def _key(email: str) -> dict[str, dict[str, str]]:
        # Event markers are keyed "tenant_…#event"; "login#" cannot collide with them.
        return {"tenant_event": {"S": f"login#{email.strip().lower()}"}}

    def get(self, email: str) -> LoginFailures | None:
        """The e-mail's counter, if any (strongly consistent: containers share it)."""
        with unavailable_on_failure("the login store"):
            item = self._client.get_item(
                TableName=self._table_name, Key=self._key(email), ConsistentRead=True
            ).get("Item")
        if item is None or "failures" not in item:
            return None
        return LoginFailures(int(item["failures"]["N"]), float(item["window_start"]["N"]))

    def add_failure(self, email: str, now: float, window_s: float) -> None:
        """Count one failure in the current window, or start a new window (atomic across containers)."""
        expires_at = {"N": str(math.ceil(now + window_s))}
        try:
            with unavailable_on_failure("the login store"):
                self._client.update_item(
                    TableName=self._table_name,
                    Key=self._key(email),
                    UpdateExpression="SET window_start = if_not_exists(window_start, :now), "
                    "expires_at = if_not_exists(expires_at, :expires) ADD failures :one",
                    ConditionExpression="attribute_not_exists(failures) OR window_start > :cutoff",
                    ExpressionAttributeValues={
                        ":now": {"N": repr(now)},
                        ":expires": expires_at,
                        ":one": {"N": "1"},
                        ":cutoff": {"N": repr(now - window_s)},
                    },
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            with unavailable_on_failure("the login store"):  # the old window has passed: a new one
                self._client.put_item(
                    TableName=self._table_name,
                    Item={
                        **self._key(email),
                        "failures": {"N": "1"},
                        "window_start": {"N": repr(now)},
                        "expires_at": expires_at,
                    },
                )

    def clear(self, email: str) -> None:
        """Forget the e-mail's failures (after a successful login)."""
        with unavailable_on_failure("the login store"):
            self._client.delete_item(TableName=self._table_name, Key=self._key(email))


@dataclass(frozen=True)
class LoginThrottle:
    """The brute-force lockout: ``max_failures`` wrong passwords per e-mail within ``window``."""

    failures: LoginFailureRepository
    max_failures: int = LOGIN_MAX_FAILURES
    window: timedelta = LOGIN_WINDOW

    def check(self, email: str, now: datetime) -> bool:
        """``TooManyRequestsError`` while the e-mail is locked out (checked before the password).

        Returns whether failures are on record (a successful login then resets them).
        """
        found = self.failures.get(email)
        if found is None:
            return False
        if found.count < self.max_failures:
            return True
        remaining = found.window_start + self.window.total_seconds() - now.timestamp()
        if remaining > 0:
            raise TooManyRequestsError(
                "too many failed logins for this e-mail; try again later",
                retry_after_s=math.ceil(remaining),
            )
        return True

    def failed(self, email: str, now: datetime) -> None:
        """Count a wrong password (or an unknown e-mail: both look the same to the caller)."""
        self.failures.add_failure(email, now.timestamp(), self.window.total_seconds())

    def succeeded(self, email: str) -> None:
        """A right password outside a lockout resets the count."""
        self.failures.clear(email)
