"""The local stack's SQS counts (``embedrec_local.moto_sqs``) answer what moto's own properties do."""

from __future__ import annotations

import time

import boto3
from moto import mock_aws


def test_queue_counts_and_deliverable_messages_follow_visibility_and_delay() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="counted")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=1)["Messages"]

        def counts() -> tuple[int, int, int]:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return (
                int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                int(attributes["ApproximateNumberOfMessagesDelayed"]),
            )

        assert len(received) == 2
        assert counts() == (3, 2, 1)  # 3 visible, 2 in flight, 1 delayed
        time.sleep(1.1)  # the visibility timeout of the two received ends
        assert counts() == (5, 0, 1)
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(m["Body"] for m in again) == [f"m{n}" for n in range(5)]  # never the delayed one
