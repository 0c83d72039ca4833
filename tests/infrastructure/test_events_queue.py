"""The events queue: built from its spec, compacted in batches by its consumer, its dead letters watched."""

from __future__ import annotations

from functions.common import deployment, resources
from tests.infrastructure.helpers import (
    Synth,
    assert_dead_letters_alarmed,
    assert_queue_follows_its_spec,
    consumer_mapping,
    function_logical_id,
    grants,
    queue_of,
    role_of_function,
    statements_of_role,
)

SPEC = resources.EVENTS_QUEUE


def test_queue_is_built_from_its_spec_with_a_dead_letter_queue(synth: Synth) -> None:
    assert_queue_follows_its_spec(synth, SPEC, deployment.COMPACT_EVENTS)


def test_compactor_reads_large_batches_within_a_window_and_reports_partial_failures(synth: Synth) -> None:
    mapping = consumer_mapping(synth, SPEC, deployment.COMPACT_EVENTS)

    # One object per tenant and batch: the batch must gather many requests, for a while
    assert mapping["BatchSize"] == SPEC.batch_size >= 100
    assert mapping["MaximumBatchingWindowInSeconds"] == SPEC.batching_window_s >= 10


def test_only_the_api_may_send_events_and_the_compactor_writes_only_raw_objects(synth: Synth) -> None:
    queue_id, _ = queue_of(synth, SPEC)
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
    assert_dead_letters_alarmed(synth, "events-dead-letters", SPEC)
