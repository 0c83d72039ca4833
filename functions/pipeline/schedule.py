"""Scheduled retraining: one EventBridge Scheduler schedule per tenant, created with the tenant
(disabled) and enabled when the tenant's first interactions arrive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from functions.common import aws
from functions.common.errors import InvalidInputError, ServiceUnavailableError
from functions.repositories.tenants import TenantRepository

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

DEFAULT_SCHEDULE = "cron(0 2 * * ? *)"  # daily at 02:00 UTC
_CRON = re.compile(r"^(cron\([^()]{9,100}\)|rate\(\d{1,4} (minute|minutes|hour|hours|day|days)\))$")


def schedule_expression(settings: dict[str, object]) -> str:
    """The tenant's retraining schedule (setting ``training_schedule``), daily at 02:00 UTC by default."""
    expression = str(settings.get("training_schedule", DEFAULT_SCHEDULE))
    if not _CRON.match(expression):
        raise InvalidInputError(
            f"training_schedule '{expression}' is not a Scheduler expression such as 'cron(0 2 * * ? *)'"
        )
    return expression


@dataclass(frozen=True)
class TrainingSchedules:
    """Creates and switches tenants' retraining schedules."""

    client: EventBridgeSchedulerClient
    group: str
    role_arn: str
    state_machine_arn: str

    def _name(self, tenant_id: str) -> str:
        return f"retrain-{tenant_id}"

    def create(self, tenant_id: str, expression: str) -> None:
        """The tenant's schedule, disabled until it has data."""
        try:
            self.client.create_schedule(
                Name=self._name(tenant_id),
                GroupName=self.group,
                ScheduleExpression=expression,
                ScheduleExpressionTimezone="UTC",
                State="DISABLED",
                FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 30},
                Target={
                    "Arn": self.state_machine_arn,
                    "RoleArn": self.role_arn,
                    "Input": json.dumps({"tenant_id": tenant_id, "trigger": "schedule"}),
                },
                Description=f"embedrec retraining of {tenant_id}",
            )
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailableError(
                "the retraining schedule could not be created, please retry"
            ) from exc

    def enable(self, tenant_id: str) -> None:
        """Switch the tenant's schedule on (idempotent)."""
        try:
            current = self.client.get_schedule(Name=self._name(tenant_id), GroupName=self.group)
            if current["State"] == "ENABLED":
                return
            self.client.update_schedule(
                Name=self._name(tenant_id),
                GroupName=self.group,
                ScheduleExpression=current["ScheduleExpression"],
                ScheduleExpressionTimezone=current.get("ScheduleExpressionTimezone", "UTC"),
                FlexibleTimeWindow=current["FlexibleTimeWindow"],
                Target=current["Target"],
                State="ENABLED",
            )
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailableError(
                "the retraining schedule could not be enabled, please retry"
            ) from exc


def configured_schedules(
    group: str | None, role_arn: str | None, state_machine_arn: str | None
) -> TrainingSchedules | None:
    """The schedules of this deployment, or None where scheduling is not configured."""
    if not (group and role_arn and state_machine_arn):
        return None
    return TrainingSchedules(aws.scheduler_client(), group, role_arn, state_machine_arn)


def on_interactions_stored(
    tenants: TenantRepository, schedules: TrainingSchedules | None, tenant_id: str
) -> None:
    """The first time a tenant has interactions, enable its retraining schedule."""
    if schedules is None:
        return
    if tenants.mark_has_data(tenant_id):
        schedules.enable(tenant_id)
