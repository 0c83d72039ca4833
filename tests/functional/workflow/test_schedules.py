"""Retraining schedules are reconciled: on every ingestion, and by the hourly sweep (moto's Scheduler)."""

from __future__ import annotations

import boto3
import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import SCHEDULE_GROUP, LocalNames
from embedrec_local.runner import LambdaRunner
from functions.common import resources
from functions.common.settings import get_schedule_settings
from functions.training.schedule import DEFAULT_WINDOW, TrainingWindow
from tests.functional.conftest import Shop

VIEW = {"user_id": "u1", "item_id": "i1", "interaction_type": "view"}


def _schedule(tenant_id: str) -> dict[str, object]:
    found: dict[str, object] = boto3.client("scheduler").get_schedule(
        Name=f"retrain-{tenant_id}", GroupName=SCHEDULE_GROUP
    )
    return found


def _drift(tenant_id: str, **changes: object) -> None:
    """Change a schedule behind the platform's back (a console edit, a half-applied deploy)."""
    current = _schedule(tenant_id)
    keep = ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target", "State")
    boto3.client("scheduler").update_schedule(
        Name=f"retrain-{tenant_id}",
        GroupName=SCHEDULE_GROUP,
        **{**{key: current[key] for key in keep if key in current}, **changes},  # type: ignore[arg-type]
    )


@pytest.fixture
def sweep(aws_env: LocalNames) -> LambdaRunner:
    get_schedule_settings.cache_clear()
    return LambdaRunner()


def test_every_ingestion_repairs_a_drifted_schedule(client: TestClient, shop: Shop) -> None:
    assert client.post("/api/v1/interactions", headers=shop.auth, json=VIEW).status_code == 200
    _drift(shop.tenant_id, State="DISABLED", ScheduleExpression="cron(0 2 * * ? *)")

    assert client.post("/api/v1/interactions", headers=shop.auth, json=VIEW).status_code == 200

    repaired = _schedule(shop.tenant_id)
    assert repaired["State"] == "ENABLED"
    assert repaired["ScheduleExpression"] == TrainingWindow.parse(DEFAULT_WINDOW).cron(shop.tenant_id)


def test_the_sweep_recreates_disables_and_deletes_what_drifted(
    client: TestClient, shop: Shop, other_shop: Shop, aws_env: LocalNames, sweep: LambdaRunner
) -> None:
    scheduler = boto3.client("scheduler")
    # Given: shop has data (enabled); other_shop's schedule was deleted; a schedule outlived its tenant;
    # and shop was suspended since
    assert client.post("/api/v1/interactions", headers=shop.auth, json=VIEW).status_code == 200
    scheduler.delete_schedule(Name=f"retrain-{other_shop.tenant_id}", GroupName=SCHEDULE_GROUP)
    orphan = {key: value for key, value in _schedule(shop.tenant_id).items() if key in ("Target",)}
    scheduler.create_schedule(
        Name="retrain-tenant_gone",
        GroupName=SCHEDULE_GROUP,
        ScheduleExpression="cron(0 2 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        **orphan,  # type: ignore[arg-type]
    )
    tenants = boto3.resource("dynamodb").Table(aws_env.table(resources.TENANTS))
    tenants.update_item(
        Key={"tenant_id": shop.tenant_id},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "suspended"},
    )

    # When the hourly sweep runs (the function's real handler)
    result = sweep.invoke("reconcile-schedules", {"source": "aws.events"})

    # Then every tenant's schedule is what it should be, and the orphan is gone
    assert result == {"created": 1, "updated": 1, "unchanged": 0, "deleted": 1, "failed": 0}
    assert _schedule(shop.tenant_id)["State"] == "DISABLED"  # suspended
    recreated = _schedule(other_shop.tenant_id)
    assert recreated["State"] == "DISABLED"  # no data yet
    assert recreated["ScheduleExpression"] == TrainingWindow.parse(DEFAULT_WINDOW).cron(other_shop.tenant_id)
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]]
    assert sorted(names) == sorted(f"retrain-{shop_.tenant_id}" for shop_ in (shop, other_shop))

    # And a second sweep changes nothing
    again = sweep.invoke("reconcile-schedules", {"source": "aws.events"})
    assert again == {"created": 0, "updated": 0, "unchanged": 2, "deleted": 0, "failed": 0}
