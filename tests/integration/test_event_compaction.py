"""Real-time JSON events on the local stack: queued per request, compacted, in raw/ by the next api answer."""

from __future__ import annotations

import io

import boto3
import pyarrow.parquet as pq
import pytest

from embedrec_local.client import EmbedrecClient
from embedrec_local.provision import LocalNames
from functions.common import resources
from functions.ingestion.event_messages import BATCH_PREFIX
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration


def test_events_posted_one_request_at_a_time_are_stored_as_batches(
    api: EmbedrecClient, stack: RunningStack
) -> None:
    if stack.aws_endpoint is None:
        pytest.skip("only the embedded stack exposes its S3 endpoint to the tests")
    tenant_id = api.open_shop(stack.admin_key, "Events", password="Events-Pass-42")

    answers = [
        api.request(
            "POST",
            "/api/v1/interactions",
            json={"event_id": f"e{n}", "user_id": f"u{n % 3}", "item_id": "i1", "interaction_type": "view"},
        )
        for n in range(12)
    ]
    # An api request that is not an events post answers after the events queue was delivered
    upload = api.request("GET", f"/api/v1/uploads/{answers[-1]['upload_id']}")

    assert [a["accepted"] for a in answers] == [1] * 12 and upload["accepted"] == 1
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = LocalNames().bucket(resources.DATA_BUCKET)
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=resources.raw_prefix(tenant_id, "interactions"))
    keys = [obj["Key"] for obj in listing.get("Contents", [])]
    # Every event once, in compacted batches (event posts do not drain the queue: the stack's poller
    # batches them within its window, and the GET above delivered the rest)
    assert keys and all(key.rsplit("/", 1)[1].startswith(BATCH_PREFIX) for key in keys)
    stored = sorted(
        event_id
        for key in keys
        for event_id in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        .column("event_id")
        .to_pylist()
    )
    assert stored == sorted(f"e{n}" for n in range(12))
