"""The impressions queue: built from its spec, consumed in batches, its dead letters watched."""

from __future__ import annotations

from typing import Any

import pytest

from cdk.constructs import analytics
from functions.common import deployment, resources
from tests.infrastructure.helpers import (
    Synth,
    function_logical_id,
    grants,
    render,
    role_of_function,
    statements_of_role,
)

# What Lambda's poller calls with the function's role (an SQS event source mapping).
EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def _queue(synth: Synth) -> tuple[str, dict[str, Any]]:
    queue = synth.stack.storage.queue(resources.IMPRESSIONS_QUEUE)
    logical_id = synth.logical_id(queue)
    return logical_id, synth.resources[logical_id]["Properties"]


def test_queue_is_built_from_its_spec_with_a_dead_letter_queue(synth: Synth) -> None:
    spec = resources.IMPRESSIONS_QUEUE
    _, queue = _queue(synth)
    dlq_id = synth.logical_id(synth.stack.storage.dead_letter_queue(spec))

    assert queue["VisibilityTimeout"] == spec.visibility_timeout_s
    assert queue["MessageRetentionPeriod"] == spec.retention_days * 86_400
    assert render(queue["RedrivePolicy"]["deadLetterTargetArn"]) == f"<{dlq_id}.Arn>"
    assert queue["RedrivePolicy"]["maxReceiveCount"] == spec.max_receives
    assert synth.resources[dlq_id]["Properties"]["MessageRetentionPeriod"] == spec.dlq_retention_days * 86_400
    # AWS's rule for a Lambda event source: visibility at least 6x the consumer's timeout
    assert spec.visibility_timeout_s >= 6 * deployment.IMPRESSIONS.timeout_s


def test_consumer_reads_batches_and_reports_partial_failures(synth: Synth) -> None:
    queue_id, _ = _queue(synth)
    [mapping] = [
        resource["Properties"]
        for resource in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]

    assert mapping["FunctionName"] == {"Ref": function_logical_id(synth, deployment.IMPRESSIONS.handler)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == analytics.BATCH_SIZE > 10  # more than one message per invocation
    assert mapping["MaximumBatchingWindowInSeconds"] >= 1
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == analytics.MAX_CONCURRENCY


def test_serving_gets_the_queue_url_and_may_send_to_it(synth: Synth) -> None:
    queue_id, _ = _queue(synth)
    serving = function_logical_id(synth, deployment.SERVING.handler)
    variables = synth.resources[serving]["Properties"]["Environment"]["Variables"]
    allowed = set(grants(statements_of_role(synth, role_of_function(synth, serving))))

    assert variables[resources.IMPRESSIONS_QUEUE.env_var] == {"Ref": queue_id}
    assert {grant for grant in allowed if grant[0].startswith("sqs:")} == {
        ("sqs:SendMessage", f"<{queue_id}.Arn>")
    }


@pytest.mark.parametrize("action", EVENT_SOURCE_ACTIONS)
def test_every_sqs_event_source_may_be_polled_by_its_functions_role(synth: Synth, action: str) -> None:
    mappings = [
        resource["Properties"]
        for resource in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if render(resource["Properties"]["EventSourceArn"]).endswith(".Arn>")
    ]
    assert len(mappings) >= 2  # the drop folder's and the impressions queue's
    for mapping in mappings:
        function = mapping["FunctionName"]["Ref"]
        allowed = set(grants(statements_of_role(synth, role_of_function(synth, function))))
        assert (action, render(mapping["EventSourceArn"])) in allowed, function


def test_dead_letters_of_the_impressions_queue_raise_an_alarm(synth: Synth) -> None:
    alarm = synth.stack.monitoring.alarms["impressions-dead-letters"]
    properties = synth.resources[synth.logical_id(alarm)]["Properties"]
    dlq_id = synth.logical_id(synth.stack.storage.dead_letter_queue(resources.IMPRESSIONS_QUEUE))

    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert properties["Threshold"] == 1
    assert properties["AlarmActions"]
