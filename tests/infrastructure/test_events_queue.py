"""The events queue: built from its spec, compacted in batches by its consumer, its dead letters watched."""

from __future__ import annotations

from typing import Any

from functions.common import deployment, resources
from tests.infrastructure.helpers import (
    Synth,
    function_logical_id,
    grants,
    render,
    role_of_function,
    statements_of_role,
)

SPEC = resources.EVENTS_QUEUE


def _queue(synth: Synth) -> tuple[str, dict[str, Any]]:
    queue = synth.stack.storage.queue(SPEC)
    logical_id = synth.logical_id(queue)
    return logical_id, synth.resources[logical_id]["Properties"]


def test_queue_is_built_from_its_spec_with_a_dead_letter_queue(synth: Synth) -> None:
    _, queue = _queue(synth)
    dlq_id = synth.logical_id(synth.stack.storage.dead_letter_queue(SPEC))

    assert queue["VisibilityTimeout"] == SPEC.visibility_timeout_s
    assert render(queue["RedrivePolicy"]["deadLetterTargetArn"]) == f"<{dlq_id}.Arn>"
    assert queue["RedrivePolicy"]["maxReceiveCount"] == SPEC.max_receives
    assert synth.resources[dlq_id]["Properties"]["MessageRetentionPeriod"] == SPEC.dlq_retention_days * 86_400
    # AWS's rule for a Lambda event source: visibility at least 6x the consumer's timeout
    assert SPEC.visibility_timeout_s >= 6 * deployment.COMPACT_EVENTS.timeout_s


def test_compactor_reads_large_batches_within_a_window_and_reports_partial_failures(synth: Synth) -> None:
    queue_id, _ = _queue(synth)
    [mapping] = [
        resource["Properties"]
        for resource in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]

    assert mapping["FunctionName"] == {"Ref": function_logical_id(synth, deployment.COMPACT_EVENTS.handler)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # One object per tenant and batch: the batch must gather many requests, for a while
    assert mapping["BatchSize"] == SPEC.batch_size >= 100
    assert mapping["MaximumBatchingWindowInSeconds"] == SPEC.batching_window_s >= 10


def test_only_the_api_may_send_events_and_the_compactor_writes_only_raw_objects(synth: Synth) -> None:
    queue_id, _ = _queue(synth)
    api = function_logical_id(synth, deployment.API.handler)
    compactor = function_logical_id(synth, deployment.COMPACT_EVENTS.handler)
    api_grants = set(grants(statements_of_role(synth, role_of_function(synth, api))))
    compactor_grants = set(grants(statements_of_role(synth, role_of_function(synth, compactor))))
    data = f"<{synth.logical_id(synth.stack.storage.data_bucket)}.Arn>"

    assert ("sqs:SendMessage", f"<{queue_id}.Arn>") in api_grants
    senders = [
        function
        for function in deployment.FUNCTIONS
        if ("sqs:SendMessage", f"<{queue_id}.Arn>")
        in set(
            grants(
                statements_of_role(
                    synth, role_of_function(synth, function_logical_id(synth, function.handler))
                )
            )
        )
    ]
    assert senders == [deployment.API]
    s3 = {grant for grant in compactor_grants if grant[0].startswith("s3:")}
    assert s3 and all(resource == f"{data}/raw/*" for _, resource in s3)
    assert ("s3:DeleteObject", f"{data}/raw/*") not in s3


def test_dead_letters_of_the_events_queue_raise_an_alarm(synth: Synth) -> None:
    alarm = synth.stack.monitoring.alarms["events-dead-letters"]
    properties = synth.resources[synth.logical_id(alarm)]["Properties"]
    dlq_id = synth.logical_id(synth.stack.storage.dead_letter_queue(SPEC))

    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert properties["Threshold"] == 1
    assert properties["AlarmActions"]
