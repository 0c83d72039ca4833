"""Scheduled retraining: one EventBridge Scheduler schedule per tenant, kept in line with the tenant.

- **Spread.** A tenant without its own ``training_schedule`` setting trains daily at a minute of the
  training window (``EMBEDREC_TRAINING_WINDOW``, default ``01:00-05:00`` UTC) chosen by a hash of its id:
  stable for a tenant, uniform over tenants, so a thousand tenants do not all submit at 02:00:00 into a
  GPU queue that runs four jobs at once.
- **Reconciled.** ``reconcile`` makes a tenant's schedule what it should be — created if missing,
  expression, target and state updated if they drifted (ENABLED for an active tenant with data,
  DISABLED otherwise) — and is called on every ingestion that stored interactions, and for every tenant
  by the hourly ``reconcile-schedules`` sweep, which also deletes the schedules of tenants that no
  longer exist.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from contract.workflow import OpenJobInput
from functions.common import aws
from functions.common.errors import InvalidInputError, NotFoundError, ServiceUnavailableError
from functions.identity.models import Tenant
from functions.identity.store.tenants import TenantRepository
from functions.training.store.schedules import Reconciled, Schedule, ScheduleStore

DEFAULT_WINDOW = "01:00-05:00"  # UTC
FLEX_MINUTES = 15  # EventBridge Scheduler's own jitter on top of the spread
_NAME_PREFIX = "retrain-"
_CRON = re.compile(r"^(cron\([^()]{9,100}\)|rate\(\d{1,4} (minute|minutes|hour|hours|day|days)\))$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class TrainingWindow:
    """Daily minutes (UTC) within which spread schedules fire: ``start`` + [0, ``minutes``)."""

    start: int
    minutes: int

    @classmethod
    def parse(cls, text: str) -> TrainingWindow:
        """``"01:00-05:00"``; a window may cross midnight (``"22:00-02:00"``)."""
        match = _WINDOW.match(text.strip())
        if match is None:
            raise ValueError(f"training window '{text}' is not HH:MM-HH:MM (UTC), e.g. '{DEFAULT_WINDOW}'")
        start = int(match[1]) * 60 + int(match[2])
        end = int(match[3]) * 60 + int(match[4])
        minutes = (end - start) % 1440
        if minutes == 0:
            raise ValueError(f"training window '{text}' is empty")
        return cls(start=start, minutes=minutes)

    def minute_of(self, tenant_id: str) -> int:
        """The tenant's minute of the day: uniform over the window, stable for the tenant."""
        digest = int.from_bytes(hashlib.sha256(tenant_id.encode()).digest()[:8], "big")
        return (self.start + digest % self.minutes) % 1440

    def cron(self, tenant_id: str) -> str:
        """Daily at the tenant's minute."""
        minute = self.minute_of(tenant_id)
        return f"cron({minute % 60} {minute // 60} * * ? *)"


def schedule_expression(
    settings: dict[str, object], tenant_id: str | None = None, window: TrainingWindow | None = None
) -> str:
    """The tenant's retraining schedule: its ``training_schedule`` setting, else its minute of the window.

    Without ``tenant_id`` only validates the setting (before the tenant exists).
    """
    explicit = settings.get("training_schedule")
    if explicit is not None:
        expression = str(explicit)
        if not _CRON.match(expression):
            raise InvalidInputError(
                f"training_schedule '{expression}' is not a Scheduler expression such as 'cron(0 2 * * ? *)'"
            )
        return expression
    chosen = window or TrainingWindow.parse(DEFAULT_WINDOW)
    return chosen.cron(tenant_id or "")


def schedule_name(tenant_id: str) -> str:
    """The name of a tenant's schedule in the group."""
    return f"{_NAME_PREFIX}{tenant_id}"


@dataclass(frozen=True)
class TrainingSchedules:
    """Decides what each tenant's retraining schedule should be and keeps the Scheduler so."""

    store: ScheduleStore
    role_arn: str
    state_machine_arn: str
    window: TrainingWindow = field(default_factory=lambda: TrainingWindow.parse(DEFAULT_WINDOW))

    def desired(self, tenant: Tenant) -> Schedule:
        """What the tenant's schedule should be: enabled for an active tenant with data."""
        return Schedule(
            name=schedule_name(tenant.tenant_id),
            expression=schedule_expression(tenant.settings, tenant.tenant_id, self.window),
            enabled=tenant.status == "active" and tenant.has_data,
            flex_minutes=FLEX_MINUTES,
            target_arn=self.state_machine_arn,
            role_arn=self.role_arn,
            input=OpenJobInput(tenant_id=tenant.tenant_id, trigger="schedule").model_dump(),
            description=f"embedrec retraining of {tenant.tenant_id}",
        )

    def reconcile(self, tenant: Tenant) -> Reconciled:
        """Make the tenant's schedule what it should be (idempotent; one read when nothing drifted)."""
        return self.store.ensure_schedule(self.desired(tenant))

    def tenant_ids(self) -> Iterator[str]:
        """The tenants that have a schedule in the group."""
        for name in self.store.schedule_names(_NAME_PREFIX):
            yield name.removeprefix(_NAME_PREFIX)

    def delete_orphan(self, tenant_id: str) -> None:
        """Remove the schedule of a tenant that no longer exists (idempotent)."""
        self.store.remove_schedule(schedule_name(tenant_id))


def configured_schedules(
    group: str | None, role_arn: str | None, state_machine_arn: str | None, window: str = DEFAULT_WINDOW
) -> TrainingSchedules | None:
    """The schedules of this deployment, or None where scheduling is not configured."""
    if not (group and role_arn and state_machine_arn):
        return None
    return TrainingSchedules(
        ScheduleStore(aws.scheduler_client(), group),
        role_arn,
        state_machine_arn,
        TrainingWindow.parse(window),
    )


def on_interactions_stored(
    tenants: TenantRepository, schedules: TrainingSchedules | None, tenant_id: str
) -> None:
    """After interactions were stored: record that the tenant has data and reconcile its schedule."""
    if schedules is None:
        return
    tenants.mark_has_data(tenant_id)
    schedules.reconcile(tenants.get(tenant_id))


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        """For the function's answer and log."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": self.failed,
        }


def reconcile_all(tenants: TenantRepository, schedules: TrainingSchedules) -> SweepResult:
    """Reconcile every tenant's schedule and delete those of tenants that no longer exist.

    A tenant whose schedule cannot be reconciled is counted and skipped (the next sweep retries it).
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
    known: set[str] = set()
    for tenant in tenants.list_all():
        known.add(tenant.tenant_id)
        try:
            counts[schedules.reconcile(tenant)] += 1
        except ServiceUnavailableError:
            counts["failed"] += 1
    for tenant_id in list(schedules.tenant_ids()):
        if tenant_id in known:
            continue
        try:  # created after the scan above? then it is not an orphan
            tenants.get(tenant_id)
        except NotFoundError:
            schedules.delete_orphan(tenant_id)
            counts["deleted"] += 1
    return SweepResult(**counts)
