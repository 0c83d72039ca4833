"""Request quotas per plan and the brute-force lockout of logins (issues 8, 16, 17).

Two limits, both answered with ``TooManyRequestsError`` (429 + ``Retry-After``):

* **Plan quotas** — every tenant has a requests-per-second budget set by its plan
  (``functions.identity.plans.PLAN_RATES``), enforced in the shared caller resolution, so the api and
  serving functions both apply it. The budget is held **across containers**: one token bucket per
  tenant in DynamoDB (the ``event_ids`` table, key ``quota#{tenant_id}``), from which a container takes
  a small *lease* of tokens (a tenth of a second of the plan's rate, at least one) with one conditional
  write, and spends it locally for up to ``LEASE_SECONDS``; so N containers share one budget and a warm
  container writes about ten times a second at its tenant's full rate, not once per request. (Tokens
  of a lease that expires unspent are lost: at most one lease per container per second.) Without a
  store (unit tests, load benchmarks), or while the store is unavailable (no request is refused for
  that), the bucket is the container's own. API Gateway's stage throttle is
  the cluster-wide ceiling, sized from the same plan table (``plans.stage_limit``, ``cdk/constructs/api.py``).
  All credentials of a tenant (logins and API keys) draw on one bucket: a new key adds no budget.
* **Login lockout** — after ``max_failures`` attempts for one e-mail within ``window``, every further
  attempt for that e-mail (even with the right password) is refused until the window that began with
  the first failure has passed. Each attempt claims its try before the password is checked, with one
  conditional write on ``login#{email}`` in the same table, so parallel guesses from any number of
  containers get at most ``max_failures`` password checks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from functions.common.dynamo import is_condition_failure, unavailable_on_failure
from functions.common.errors import ServiceUnavailableError, TooManyRequestsError
from functions.identity.models import Plan
from functions.identity.plans import PLAN_RATES, RateLimit
from functions.identity.plans import stage_limit as plan_stage_limit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["PLAN_LIMITS", "RateLimit", "RequestQuotas", "SharedQuotaStore", "TokenBucket", "stage_limit"]

PLAN_LIMITS: Mapping[Plan, RateLimit] = PLAN_RATES
# POST /api/v1/auth/login at API Gateway (all callers together): generous for people, slow for scripts.
LOGIN_ROUTE_LIMIT = RateLimit(rate_per_s=10, burst=20)

LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=5)

#: How long a container may spend a lease before it must ask the shared bucket again.
LEASE_SECONDS = 1.0
#: A lease is this many seconds of the plan's rate (at least one token).
LEASE_SHARE_S = 0.1
_LEASE_RETRIES = 5  # conditional-write conflicts with other containers before giving up for now
_BUCKET_TTL_S = 86_400  # an idle tenant's bucket item expires

_MAX_BUCKETS = 10_000


def stage_limit() -> RateLimit:
    """The stage throttling without a forecast of tenants: the largest plan's budget."""
    return plan_stage_limit()


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


class QuotaStore(Protocol):
    """A token bucket per tenant shared by every container."""

    def lease(self, tenant_id: str, limit: RateLimit, want: int, now: float) -> tuple[int, float]:
        """Take up to ``want`` tokens: (granted, 0.0), or (0, seconds until one is available)."""


class SharedQuotaStore:
    """Tenants' token buckets in the ``event_ids`` table (key ``quota#{tenant_id}``; TTL ``expires_at``).

    A lease reads the bucket (consistent) and writes its refilled level conditioned on the version it
    read: of two containers leasing at once one wins. The loser does not simply read again (six cold
    containers in lockstep would need six rounds, and a caller must not be refused while the bucket is
    full): it takes its tokens from the stored level with one atomic decrement conditioned on enough
    being left. Decrements commute, so any number of containers get through in one round; they skip
    the refill since the last write, which only ever grants less. Tokens are never handed out twice.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    @staticmethod
    def _key(tenant_id: str) -> dict[str, dict[str, str]]:
        # Event markers are keyed "tenant_…#event", logins "login#…": "quota#" collides with neither.
        return {"tenant_event": {"S": f"quota#{tenant_id}"}}

    def lease(self, tenant_id: str, limit: RateLimit, want: int, now: float) -> tuple[int, float]:
        """Take up to ``want`` tokens from the tenant's bucket (refilled at the plan's rate)."""
        for _ in range(_LEASE_RETRIES):
            with unavailable_on_failure("the quota store"):
                item = self._client.get_item(
                    TableName=self._table_name, Key=self._key(tenant_id), ConsistentRead=True
                ).get("Item")
            if item is None or "version" not in item:
                level, updated, version = float(limit.burst), now, 0
            else:
                tokens, updated = float(item["tokens"]["N"]), float(item["updated"]["N"])
                version = int(item["version"]["N"])
                level = min(float(limit.burst), tokens + max(0.0, now - updated) * limit.rate_per_s)
                updated = max(now, updated)  # a container whose clock lags never winds the bucket back
            if level < 1.0:
                return 0, (1.0 - level) / limit.rate_per_s
            granted = min(want, int(level))
            try:
                with unavailable_on_failure("the quota store"):
                    self._client.update_item(
                        TableName=self._table_name,
                        Key=self._key(tenant_id),
                        UpdateExpression="SET tokens = :tokens, updated = :now, expires_at = :expires, "
                        "version = :next",
                        # The version read above: of two containers leasing at once, one wins.
                        ConditionExpression="attribute_not_exists(version)"
                        if version == 0
                        else "version = :read",
                        ExpressionAttributeValues={
                            ":tokens": {"N": repr(level - granted)},
                            ":now": {"N": repr(updated)},
                            ":expires": {"N": str(math.ceil(now + _BUCKET_TTL_S))},
                            ":next": {"N": str(version + 1)},
                            **({":read": {"N": str(version)}} if version else {}),
                        },
                    )
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                # Another container leased meanwhile: spend from the level it stored, if any is left.
                if taken := self._decrement(tenant_id, want, now):
                    return taken, 0.0
                continue
            return granted, 0.0
        return 0, 1.0 / limit.rate_per_s  # heavy contention: the bucket is being drained by others

    def _decrement(self, tenant_id: str, want: int, now: float) -> int:
        """Take ``want`` tokens (or, with fewer left, one) from the stored level without a refill; the
        tokens taken, or 0 when not even one is stored."""
        for take in (want, 1) if want > 1 else (1,):
            try:
                with unavailable_on_failure("the quota store"):
                    self._client.update_item(
                        TableName=self._table_name,
                        Key=self._key(tenant_id),
                        # The version moves too, so a versioned write that read the old level fails.
                        UpdateExpression="SET tokens = tokens - :take, expires_at = :expires "
                        "ADD version :one",
                        ConditionExpression="tokens >= :take",
                        ExpressionAttributeValues={
                            ":take": {"N": str(take)},
                            ":expires": {"N": str(math.ceil(now + _BUCKET_TTL_S))},
                            ":one": {"N": "1"},
                        },
                    )
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                continue
            return take
        return 0


@dataclass
class _Lease:
    tokens: int
    expires: float
    limit: RateLimit


@dataclass
class RequestQuotas:
    """Per-tenant quotas of one container: leases from a shared ``store``, or its own token buckets."""

    limits: Mapping[Plan, RateLimit] = field(default_factory=lambda: PLAN_LIMITS)
    clock: Callable[[], float] = time.time  # wall time: containers compare it through the store
    store: Callable[[], QuotaStore] | None = None
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _leases: dict[str, _Lease] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, tenant_id: str, plan: Plan, *, blocking: bool = True) -> bool:
        """Count one request of the tenant; ``TooManyRequestsError`` when its budget is spent.

        With ``blocking=False`` nothing that needs I/O happens: False means "ask again on a thread"
        (a lease must be renewed), and nothing was counted.
        """
        limit = self.limits[plan]
        now = self.clock()
        if self.store is None:
            self._take_local(tenant_id, limit, plan, now)
            return True
        with self._lock:
            lease = self._leases.get(tenant_id)
            if lease is not None and lease.limit == limit and lease.tokens > 0 and lease.expires > now:
                lease.tokens -= 1
                return True
        if not blocking:
            return False
        want = max(1, math.ceil(limit.rate_per_s * LEASE_SHARE_S))
        try:
            granted, wait_s = self.store().lease(tenant_id, limit, want, now)
        except ServiceUnavailableError:
            # The shared store is down: hold the limit per container rather than refuse every request.
            self._take_local(tenant_id, limit, plan, now)
            return True
        if granted == 0:
            raise _refused(plan, limit, wait_s)
        with self._lock:
            if len(self._leases) >= _MAX_BUCKETS:
                self._leases.clear()
            self._leases[tenant_id] = _Lease(granted - 1, now + LEASE_SECONDS, limit)
        return True

    def _take_local(self, tenant_id: str, limit: RateLimit, plan: Plan, now: float) -> None:
        with self._lock:
            bucket = self._buckets.get(tenant_id)
            if bucket is None or bucket.limit != limit:  # new tenant, or its plan changed
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._buckets.clear()
                bucket = self._buckets[tenant_id] = TokenBucket(limit, float(limit.burst), now)
            wait_s = bucket.take(now)
        if wait_s > 0.0:
            raise _refused(plan, limit, wait_s)

    def clear(self) -> None:
        """Forget every bucket and lease (a cold container)."""
        with self._lock:
            self._buckets.clear()
            self._leases.clear()


def _refused(plan: Plan, limit: RateLimit, wait_s: float) -> TooManyRequestsError:
    return TooManyRequestsError(
        f"the {plan.value} plan allows {limit.rate_per_s:g} requests per second "
        f"(bursts of {limit.burst}); slow down",
        retry_after_s=max(1, math.ceil(wait_s)),
    )


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
