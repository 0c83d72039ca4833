"""Dataset preparation in bounded memory: a snapshot built a few users at a time equals one built at once."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common.settings import get_pipeline_settings
from functions.training import dataset, steps
from functions.training.handlers import pipeline_context
from tests.functional.conftest import Shop

NOW = datetime.now(UTC).replace(microsecond=0)
ITEMS = "item_id,title,category,price,brand\n" + "".join(
    f"item_{i},Item {i},Audio,{10 + i}.0,Brand\n" for i in range(30)
)


@pytest.fixture
def ctx(aws_env: LocalNames) -> steps.PipelineContext:
    get_pipeline_settings.cache_clear()
    pipeline_context.cache_clear()
    return pipeline_context()


def _upload_history(client: TestClient, shop: Shop) -> None:
    """Three files: 40 users, unknown items, rows outside the window, one event replayed in a later file."""
    rng = random.Random(5)
    header = "user_id,item_id,interaction_type,timestamp,event_id\n"
    for number in range(3):
        lines = []
        for row in range(150):
            user, item = f"u{rng.randrange(40)}", f"item_{rng.randrange(33)}"  # items 30-32 are unknown
            days = rng.uniform(0, 120)  # a quarter is older than the 90-day window
            stamp = (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")
            lines.append(f"{user},{item},view,{stamp},f{number}-r{row}\n")
        if number == 2:
            lines.append(lines[0].replace("f2-r0", "f0-r3"))  # f0-r3 was claimed by the first file
        response = client.post(
            "/api/v1/interactions",
            headers={**shop.auth, "Content-Type": "text/csv"},
            content=(header + "".join(lines)).encode(),
        )
        assert response.status_code == 200, response.text


def _snapshot(ctx: steps.PipelineContext, shop: Shop, job_id: str) -> tuple[dataset.Snapshot, pa.Table]:
    snapshot = dataset.prepare_snapshot(
        ctx.data, ctx.uploads, shop.tenant_id, job_id, window_days=90, as_of=None, validation_fraction=0.2
    )
    body = boto3.client("s3").get_object(Bucket=ctx.data.bucket, Key=snapshot.prefix + "interactions.parquet")
    table = pq.read_table(io.BytesIO(body["Body"].read()))
    return snapshot, table.sort_by([("user_id", "ascending"), ("event_id", "ascending")])


def test_a_snapshot_built_in_groups_of_users_equals_one_built_at_once(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    _upload_history(client, shop)
    whole, whole_table = _snapshot(ctx, shop, "job_whole0000001")

    monkeypatch.setattr(dataset, "_GROUP_ROWS", 40)  # a handful of users per group
    grouped, grouped_table = _snapshot(ctx, shop, "job_groups000001")

    counts = (grouped.interactions, grouped.validation, grouped.users, grouped.items)
    assert counts == (whole.interactions, whole.validation, whole.users, whole.items)
    assert grouped_table.drop_columns(["ingested_at"]).equals(whole_table.drop_columns(["ingested_at"]))
    assert json.loads(grouped_table.schema.metadata[dataset.WINDOW_METADATA_KEY]) == grouped.window.as_dict()


def test_the_snapshot_keeps_each_event_once_catalogue_items_and_the_window(
    client: TestClient, shop: Shop, ctx: steps.PipelineContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode())
    _upload_history(client, shop)
    monkeypatch.setattr(dataset, "_GROUP_ROWS", 40)

    snapshot, table = _snapshot(ctx, shop, "job_groups000002")

    rows = table.to_pylist()
    assert len({r["event_id"] for r in rows}) == len(rows) == snapshot.interactions
    assert all(int(r["item_id"].split("_")[1]) < 30 for r in rows)
    assert all(snapshot.window.start <= r["timestamp"] < snapshot.window.end for r in rows)
    # Each user with at least 3 interactions holds out its newest one(s), and only its newest.
    by_user: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_user.setdefault(str(row["user_id"]), []).append(row)
    for events in by_user.values():
        events.sort(key=lambda r: r["timestamp"])  # type: ignore[arg-type, return-value]
        flags = [bool(r["is_validation"]) for r in events]
        held = sum(flags)
        assert held == (max(1, int(len(events) * 0.2)) if len(events) >= 3 else 0)
        assert flags == [False] * (len(events) - held) + [True] * held
