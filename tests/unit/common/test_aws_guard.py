"""AWS calls refuse to block inside ``no_blocking_calls()``: refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import EndpointConnectionError

from functions.common import aws
from functions.common.container import reset_container_state


@pytest.fixture
def unreachable_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a sent call fails
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_container_state()  # clients built from here on point at nothing
    yield
    reset_container_state()


def test_calls_inside_the_block_are_refused_before_they_are_sent(unreachable_aws: None) -> None:
    with aws.no_blocking_calls():
        assert aws.blocking_refused()
        with pytest.raises(aws.WouldBlockError, match="dynamodb.GetItem"):
            aws.dynamodb_client().get_item(TableName="t", Key={"k": {"S": "v"}})
        with pytest.raises(aws.WouldBlockError, match="dynamodb.GetItem"):
            aws.dynamodb_resource().Table("t").get_item(Key={"k": "v"})
        with pytest.raises(aws.WouldBlockError, match="s3.GetObject"):
            aws.s3_client().get_object(Bucket="b", Key="k")
        with pytest.raises(aws.WouldBlockError, match="a first model load"):
            aws.refuse_blocking("a first model load")

    assert not aws.blocking_refused()
    aws.refuse_blocking("anything")  # outside the block: allowed
    with pytest.raises(EndpointConnectionError):  # and the same call is really sent
        aws.dynamodb_client().get_item(TableName="t", Key={"k": {"S": "v"}})
