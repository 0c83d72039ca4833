"""Real-time events through the events queue: one Parquet object per batch and tenant, each event once.

The api app answers ``POST /api/v1/interactions`` (JSON) exactly as before and hands the accepted rows
off as one SQS message per request; the ``compact-events`` consumer, invoked by its handler string with
SQS events of the real shape (as the event source mapping does), writes a batch as one object and one
upload record per tenant. A training snapshot then holds every accepted event exactly once, also when
messages are redelivered, when a consumer died half-way, and when SendMessage failed.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ReadTimeoutError
from fastapi.testclient import TestClient

from embedrec_local.event_sources import SqsEventSource
from embedrec_local.provision import LocalNames
from embedrec_local.runner import LambdaRunner
from functions.common import aws, resources
from functions.common.settings import get_pipeline_settings
from functions.ingestion.event_messages import BATCH_PREFIX, EventMessage, batch_id
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import CompactionClaim, UploadRepository
from functions.training import dataset, steps
from functions.training.handlers import pipeline_context
from tests.functional.conftest import Shop, api_client, make_shop, sqs_batch
from tests.functional.faults.conftest import failing

NOW = datetime.now(UTC).replace(microsecond=0)
ITEMS = "item_id,title,category,price,brand\n" + "".join(
    f"item_{i},Item {i},Audio,{10 + i}.0,Brand\n" for i in range(10)
)


def _events(request: int) -> list[dict[str, Any]]:
    """Five events of four shoppers: four carry an event id, the last none (never de-duplicated)."""
    events: list[dict[str, Any]] = []
    for n in range(5):
        stamp = (NOW - timedelta(hours=request * 5 + n + 1)).isoformat().replace("+00:00", "Z")
        event: dict[str, Any] = {
            "user_id": f"u{(request + n) % 4}",
            "item_id": f"item_{(request * 3 + n) % 10}",
            "interaction_type": "purchase" if n == 2 else "view",
            "timestamp": stamp,
        }
        if n < 4:
            event["event_id"] = f"r{request}-e{n}"
        events.append(event)
    return events


@pytest.fixture
def api(aws_env: LocalNames) -> Iterator[TestClient]:
    """The api app whose events wait in the queue until a test delivers them."""
    with api_client(aws_env, deliver_events=False) as client:
        yield client


@pytest.fixture
def tenant(api: TestClient) -> Shop:
    shop = make_shop(api, "eventshop", "admin@eventshop.example")
    items = api.post(
        "/api/v1/items", headers={**shop.auth, "Content-Type": "text/csv"}, content=ITEMS.encode()
    )
    assert items.status_code == 200, items.text
    return shop


@pytest.fixture
def ctx(aws_env: LocalNames) -> steps.PipelineContext:
    get_pipeline_settings.cache_clear()
    pipeline_context.cache_clear()
    return pipeline_context()


def _raw(aws_env: LocalNames, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every interactions object of the tenant, with its rows."""
    s3, bucket = boto3.client("s3"), aws_env.bucket(resources.DATA_BUCKET)
    objects: dict[str, list[dict[str, Any]]] = {}
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=resources.raw_prefix(tenant_id, "interactions"))
    for obj in listing.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        objects[obj["Key"]] = pq.read_table(io.BytesIO(body)).to_pylist()
    return objects


def _signature(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["event_id"], row["user_id"], row["item_id"], row["timestamp"], row["upload_id"])


def _snapshot_rows(ctx: steps.PipelineContext, tenant_id: str) -> Counter[tuple[Any, ...]]:
    snapshot = dataset.prepare_snapshot(
        ctx.data,
        ctx.uploads,
        tenant_id,
        "job_events000001",
        window_days=90,
        as_of=None,
        validation_fraction=0.2,
    )
    table = pq.read_table(io.BytesIO(ctx.data.get_bytes(snapshot.prefix + "interactions.parquet")))
    return Counter(_signature(row) for row in table.to_pylist())


def _queued(aws_env: LocalNames) -> list[str]:
    """The bodies of every message in the events queue (received, then made visible again at once)."""
    sqs, url = boto3.client("sqs"), aws_env.queue_url(resources.EVENTS_QUEUE)
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [message["Body"] for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
    return bodies


def _deliver(*bodies: str) -> list[str]:
    """Invoke the consumer by its handler string with one SQS batch; returns the failed message ids."""
    event = sqs_batch("arn:aws:sqs:us-east-1:123456789012:embedrec-events", *bodies)
    result = LambdaRunner().invoke("compact-events", event)
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def test_events_reach_a_training_snapshot_once_through_one_object_per_batch(
    api: TestClient, tenant: Shop, aws_env: LocalNames, events: SqsEventSource, ctx: steps.PipelineContext
) -> None:
    # Given six requests of five events, and a replay of the first (its event ids are duplicates)
    answers = [api.post("/api/v1/interactions", json=_events(n), headers=tenant.auth) for n in range(6)]
    replay = api.post("/api/v1/interactions", json=_events(0), headers=tenant.auth)

    # Then the answers are the walkthrough's reports, unchanged, and nothing is stored per request
    assert [(a.status_code, a.json()["status"], a.json()["accepted"]) for a in answers] == [
        (200, "success", 5)
    ] * 6
    assert (replay.json()["accepted"], replay.json()["duplicates"]) == (1, 4)
    assert _raw(aws_env, tenant.tenant_id) == {}
    assert events.pending() == 7  # one message per request
    upload_id = answers[0].json()["upload_id"]
    assert api.get(f"/api/v1/uploads/{upload_id}", headers=tenant.auth).json()["accepted"] == 5

    # When the compactor gets the batch
    assert events.drain()

    # Then the batch is ONE object (and one record), holding every accepted event once
    [(key, rows)] = _raw(aws_env, tenant.tenant_id).items()
    assert key.rsplit("/", 1)[1].startswith(BATCH_PREFIX)
    assert len(rows) == 31
    ids = Counter(row["event_id"] for row in rows if row["event_id"])
    assert ids == Counter({f"r{r}-e{n}": 1 for r in range(6) for n in range(4)})
    batch = key.rsplit("/", 1)[1].removesuffix(".parquet")
    record = api.get(f"/api/v1/uploads/{batch}", headers=tenant.auth).json()
    assert (record["accepted"], record["source"], record["status"]) == (31, "api-json", "success")
    # And a training snapshot holds each of them exactly once
    assert _snapshot_rows(ctx, tenant.tenant_id) == Counter(_signature(row) for row in rows)
    assert sum(_snapshot_rows(ctx, tenant.tenant_id).values()) == 31


def test_redelivered_messages_are_stored_once_in_whatever_batch_they_come(
    api: TestClient, tenant: Shop, aws_env: LocalNames, ctx: steps.PipelineContext
) -> None:
    for n in range(3):
        assert api.post("/api/v1/interactions", json=_events(n), headers=tenant.auth).status_code == 200
    first, second, third = sorted(
        _queued(aws_env), key=lambda body: EventMessage.model_validate_json(body).rows
    )

    # SQS delivers at least once, in any company: alone, again with others, twice in one batch
    assert _deliver(first) == []
    assert _deliver(second, first) == []
    assert _deliver(third, second, first, third) == []

    objects = _raw(aws_env, tenant.tenant_id)
    rows = [row for stored in objects.values() for row in stored]
    assert len(objects) == 3 and len(rows) == 15
    assert len({_signature(row) for row in rows}) == 15
    assert sum(_snapshot_rows(ctx, tenant.tenant_id).values()) == 15


def test_a_consumer_that_died_half_way_leaves_nothing_visible_and_the_redelivery_stores_once(
    api: TestClient, tenant: Shop, aws_env: LocalNames, ctx: steps.PipelineContext
) -> None:
    for n in range(2):
        assert api.post("/api/v1/interactions", json=_events(n), headers=tenant.auth).status_code == 200
    bodies = _queued(aws_env)
    messages = [EventMessage.model_validate_json(body) for body in bodies]
    uploads = UploadRepository(aws.dynamodb_resource().Table(aws_env.table(resources.UPLOADS)))
    store = DataStore(aws.s3_client(), aws_env.bucket(resources.DATA_BUCKET))

    # Given a consumer that claimed both requests and wrote their object, then died before its record
    dead_batch = batch_id(m.upload_id for m in messages)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    for message in messages:
        assert uploads.claim_for_compaction(
            tenant.tenant_id, message.upload_id, dead_batch, CompactionClaim(), long_ago
        )
    store.put_parquet(
        resources.raw_key(tenant.tenant_id, "interactions", NOW.date().isoformat(), dead_batch),
        pa.concat_tables([m.table() for m in messages]),
    )

    # When the messages come back one at a time (the claims expired with the dead consumer)
    assert _deliver(bodies[0]) == []
    assert _deliver(bodies[1], bodies[0]) == []

    # Then the uncommitted object is not read, and every event is in the snapshot once
    assert sum(len(rows) for rows in _raw(aws_env, tenant.tenant_id).values()) == 20  # 10 of them orphaned
    assert sum(_snapshot_rows(ctx, tenant.tenant_id).values()) == 10

    # And a request claimed by a consumer that is still running is left to it: delivered again later
    assert api.post("/api/v1/interactions", json=_events(5), headers=tenant.auth).status_code == 200
    [body] = _queued(aws_env)
    running = EventMessage.model_validate_json(body)
    assert uploads.claim_for_compaction(
        tenant.tenant_id,
        running.upload_id,
        batch_id([running.upload_id]),
        CompactionClaim(),
        datetime.now(UTC),
    )
    assert _deliver(body) == ["m0"]


def _sent_but_timed_out(**_: Any) -> None:
    raise ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com")


def test_when_sendmessage_fails_the_api_stores_the_events_itself_exactly_once(
    api: TestClient, tenant: Shop, aws_env: LocalNames, events: SqsEventSource, ctx: steps.PipelineContext
) -> None:
    sqs = aws.sqs_client()

    # Given SendMessage that fails outright, then one that queued the message but timed out
    with failing(sqs, {"SendMessage": 1}):
        refused_queue = api.post("/api/v1/interactions", json=_events(0), headers=tenant.auth)
    sqs.meta.events.register("after-call.sqs.SendMessage", _sent_but_timed_out, unique_id="timed-out")
    try:
        queued_anyway = api.post("/api/v1/interactions", json=_events(1), headers=tenant.auth)
    finally:
        sqs.meta.events.unregister("after-call.sqs.SendMessage", unique_id="timed-out")

    # Then both answers are the usual reports, and both requests are stored already (one object each)
    assert [(r.status_code, r.json()["accepted"]) for r in (refused_queue, queued_anyway)] == [(200, 5)] * 2
    assert sorted(len(rows) for rows in _raw(aws_env, tenant.tenant_id).values()) == [5, 5]
    assert events.pending() == 1

    # When the message queued after all is delivered, it is recognised as stored
    assert events.drain()
    rows = [row for stored in _raw(aws_env, tenant.tenant_id).values() for row in stored]
    assert len(rows) == 10 and len({_signature(row) for row in rows}) == 10
    assert sum(_snapshot_rows(ctx, tenant.tenant_id).values()) == 10


def test_when_queue_and_store_both_fail_the_request_is_a_503_that_stores_nothing(
    api: TestClient, tenant: Shop, aws_env: LocalNames, events: SqsEventSource
) -> None:
    sqs = aws.sqs_client()
    sqs.meta.events.register("after-call.sqs.SendMessage", _sent_but_timed_out, unique_id="timed-out")
    try:
        with failing(aws.s3_client(), {"PutObject": 10}):
            refused = api.post("/api/v1/interactions", json=_events(0), headers=tenant.auth)
    finally:
        sqs.meta.events.unregister("after-call.sqs.SendMessage", unique_id="timed-out")

    assert refused.status_code == 503 and refused.headers["Retry-After"]
    # The message was queued after all, but its request was undone: the consumer stores nothing of it
    assert events.drain()
    assert _raw(aws_env, tenant.tenant_id) == {}
    # And the client's retry is accepted in full (its event ids were released), then stored once
    retry = api.post("/api/v1/interactions", json=_events(0), headers=tenant.auth)
    assert (retry.status_code, retry.json()["accepted"], retry.json()["duplicates"]) == (200, 5, 0)
    assert events.drain()
    assert sum(len(rows) for rows in _raw(aws_env, tenant.tenant_id).values()) == 5


def test_events_still_queued_when_their_shopper_is_erased_are_never_stored(
    api: TestClient, tenant: Shop, aws_env: LocalNames, events: SqsEventSource
) -> None:
    # Given events of u0..u3 accepted, then u0 erased while they wait in the queue
    assert api.post("/api/v1/interactions", json=_events(0), headers=tenant.auth).status_code == 200
    erased = api.delete("/api/v1/users/u0", headers=tenant.auth)
    assert erased.status_code == 200, erased.text
    time.sleep(1.1)  # erasure markers keep whole seconds
    later = [{"user_id": "u0", "item_id": "item_1", "interaction_type": "view", "event_id": "after-erasure"}]
    assert api.post("/api/v1/interactions", json=later, headers=tenant.auth).json()["accepted"] == 1

    # When the compactor gets them
    assert events.drain()

    # Then none of u0's earlier events is stored; the others and u0's later event are
    rows = [row for stored in _raw(aws_env, tenant.tenant_id).values() for row in stored]
    earlier = [e for e in _events(0) if e["user_id"] != "u0"]
    assert sorted(row["event_id"] or "" for row in rows) == sorted(
        [e.get("event_id", "") for e in earlier] + ["after-erasure"]
    )
