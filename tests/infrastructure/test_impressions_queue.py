"""The impressions queue: built from its spec, consumed in batches, its dead letters watched."""

from __future__ import annotations

import pytest

from cdk.constructs import analytics
from functions.common import deployment, resources
from tests.infrastructure.helpers import (
    Synth,
    assert_dead_letters_alarmed,
    assert_queue_follows_its_spec,
    consumer_mapping,
    function_logical_id,
    grants,
    queue_of,
    render,
    role_of_function,
    statements_of_role,
)

# What Lambda's poller calls with the function's role (an SQS event source mapping).
EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
SPEC = resources.IMPRESSIONS_QUEUE


def test_queue_is_built_from_its_spec_with_a_dead_letter_queue(synth: Synth) -> None:
    _, queue = queue_of(synth, SPEC)

    assert queue["MessageRetentionPeriod"] == SPEC.retention_days * 86_400
    assert_queue_follows_its_spec(synth, SPEC, deployment.IMPRESSIONS)


def test_consumer_reads_batches_and_reports_partial_failures(synth: Synth) -> None:
    mapping = consumer_mapping(synth, SPEC, deployment.IMPRESSIONS)

    assert mapping["BatchSize"] == SPEC.batch_size > 10  # more than one message per invocation
    assert mapping["MaximumBatchingWindowInSeconds"] == SPEC.batching_window_s >= 1
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == analytics.MAX_CONCURRENCY


def test_serving_gets_the_queue_url_and_may_send_to_it(synth: Synth) -> None:
    queue_id, _ = queue_of(synth, SPEC)
    serving = function_logical_id(synth, deployment.SERVING.handler)
    variables = synth.resources[serving]["Properties"]["Environment"]["Variables"]
    allowed = set(grants(statements_of_role(synth, role_of_function(synth, serving))))

    assert variables[SPEC.env_var] == {"Ref": queue_id}
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
    assert_dead_letters_alarmed(synth, "impressions-dead-letters", SPEC)
