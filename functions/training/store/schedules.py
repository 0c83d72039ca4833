"""EventBridge Scheduler: the schedules of one group, each starting the training workflow for a tenant.

What a tenant's schedule should be is decided in ``functions.training.schedule``; here it is read,
written, listed and deleted. Scheduler errors become ``ServiceUnavailableError`` (callers retry).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from functions.common.errors import ServiceUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

Reconciled = Literal["created", "updated", "unchanged"]
_NOT_FOUND = "ResourceNotFoundException"


@dataclass(frozen=True)
class Schedule:
    """One schedule: when it fires (``expression``, UTC), with what jitter, and which execution it starts."""

    name: str
    expression: str
    enabled: bool
    flex_minutes: int
    target_arn: str
    role_arn: str
    input: dict[str, str]
    description: str


class ScheduleStore:
    """Reads and writes the schedules of one schedule group."""

    def __init__(self, client: EventBridgeSchedulerClient, group: str) -> None:
        self._client = client
        self._group = group

    def _arguments(self, schedule: Schedule) -> dict[str, Any]:
        """The schedule as the arguments of Create/UpdateSchedule."""
        return {
            "Name": schedule.name,
            "GroupName": self._group,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": "UTC",
            "State": "ENABLED" if schedule.enabled else "DISABLED",
            "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": schedule.flex_minutes},
            "Target": {
                "Arn": schedule.target_arn,
                "RoleArn": schedule.role_arn,
                "Input": json.dumps(schedule.input),
            },
            "Description": schedule.description,
        }

    def ensure_schedule(self, schedule: Schedule) -> Reconciled:
        """Make the stored schedule ``schedule``: created if missing, updated if it drifted (one read
        when nothing did; the description alone is no drift)."""
        wanted = self._arguments(schedule)
        try:
            try:
                current = self._client.get_schedule(Name=schedule.name, GroupName=self._group)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != _NOT_FOUND:
                    raise
                self._client.create_schedule(**wanted)
                return "created"
            if all(_same(current.get(key), value) for key, value in wanted.items() if key != "Description"):
                return "unchanged"
            self._client.update_schedule(**wanted)
            return "updated"
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailableError(
                "the retraining schedule could not be reconciled, please retry"
            ) from exc

    def schedule_names(self, prefix: str) -> Iterator[str]:
        """The names of the group's schedules that start with ``prefix``."""
        try:
            token: str | None = None
            while True:
                page = (
                    self._client.list_schedules(GroupName=self._group, NamePrefix=prefix, NextToken=token)
                    if token
                    else self._client.list_schedules(GroupName=self._group, NamePrefix=prefix)
                )
                for found in page.get("Schedules", []):
                    yield str(found["Name"])
                token = page.get("NextToken")
                if not token:
                    return
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailableError("the retraining schedules could not be listed") from exc

    def remove_schedule(self, name: str) -> None:
        """Delete a schedule (idempotent: a missing one is no error)."""
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != _NOT_FOUND:
                raise ServiceUnavailableError("the retraining schedule could not be deleted") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailableError("the retraining schedule could not be deleted") from exc


def _same(current: object, wanted: object) -> bool:
    """Whether the stored value says what the wanted one does (extra stored keys aside; JSON by value)."""
    if isinstance(wanted, dict) and isinstance(current, dict):
        return all(_same(current.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, str) and isinstance(current, str) and wanted.startswith("{"):
        try:
            return bool(json.loads(current) == json.loads(wanted))
        except json.JSONDecodeError:
            return current == wanted
    return current == wanted
