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
    """Login attempt counters in the ``event_ids`` table (key ``login#{email}``; expire by TTL).

    ``claim`` counts an attempt BEFORE its password is checked, with one conditional write, so
    parallel guesses from any number of containers cannot all read "4 failures" and all try: at
    most ``max_failures`` attempts per window ever reach the password check.
    """

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

    def claim(self, email: str, now: float, window_s: float, max_failures: int) -> int | None:
        """Count one attempt in the current window (or open a new window) if the e-mail is not locked.

        Returns the attempts counted before this one, or None when the window already holds
        ``max_failures`` (locked out: nothing was written). Atomic across containers: the count is
        raised by a conditional ``UpdateItem``, never read first and written after.
        """
        expires_at = {"N": str(math.ceil(now + window_s))}
        try:
            with unavailable_on_failure("the login store"):
                answer = self._client.update_item(
                    TableName=self._table_name,
                    Key=self._key(email),
                    UpdateExpression="SET window_start = if_not_exists(window_start, :now), "
                    "expires_at = if_not_exists(expires_at, :expires) ADD failures :one",
                    ConditionExpression="attribute_not_exists(failures) "
                    "OR (failures < :max AND window_start > :cutoff)",
                    ExpressionAttributeValues={
                        ":now": {"N": repr(now)},
                        ":expires": expires_at,
                        ":one": {"N": "1"},
                        ":max": {"N": str(max_failures)},
                        ":cutoff": {"N": repr(now - window_s)},
                    },
                    ReturnValues="UPDATED_NEW",
                )
            return int(answer["Attributes"]["failures"]["N"]) - 1
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
        try:  # full, or its window has passed: only a passed window may be replaced by a new one
            with unavailable_on_failure("the login store"):
                self._client.put_item(
                    TableName=self._table_name,
                    Item={
                        **self._key(email),
                        "failures": {"N": "1"},
                        "window_start": {"N": repr(now)},
                        "expires_at": expires_at,
                    },
                    ConditionExpression="attribute_not_exists(failures) OR window_start <= :cutoff",
                    ExpressionAttributeValues={":cutoff": {"N": repr(now - window_s)}},
                )
            return 0
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
        return None

    def clear(self, email: str) -> None:
        """Forget the e-mail's failures (after a successful login)."""
        with unavailable_on_failure("the login store"):
            self._client.delete_item(TableName=self._table_name, Key=self._key(email))


@dataclass(frozen=True)
class LoginThrottle:
    """The brute-force lockout: ``max_failures`` attempts per e-mail within ``window``.

    Every attempt claims a slot before its password is checked (``claim``); a wrong password keeps
    its slot as a failure, a right one clears the count. While the window's slots are all taken,
    every attempt, even with the right password, is refused without checking the password.
    """

    failures: LoginFailureRepository
    max_failures: int = LOGIN_MAX_FAILURES
    window: timedelta = LOGIN_WINDOW

    def claim(self, email: str, now: datetime) -> bool:
        """Take one attempt of the e-mail's window; ``TooManyRequestsError`` while it is locked out.

        Returns whether earlier failures are on record.
        """
        before = self.failures.claim(email, now.timestamp(), self.window.total_seconds(), self.max_failures)
        if before is not None:
            return before > 0
        found = self.failures.get(email)
        window_start = found.window_start if found is not None else now.timestamp()
        remaining = window_start + self.window.total_seconds() - now.timestamp()
        raise TooManyRequestsError(
            "too many failed logins for this e-mail; try again later",
            retry_after_s=max(1, math.ceil(remaining)),
        )

    def succeeded(self, email: str) -> None:
        """A right password (claimed within the window's slots) resets the count."""
        self.failures.clear(email)
