"""Every AWS action a code path calls is granted to the role that runs it — derived from the code.

``code_calls`` walks each handler's call graph (by name, over its import closure) and maps every boto3
operation it can reach to its IAM action; these tests compare that with the synthesised policies. A new
``head_object`` in a job or a new table write in a step fails here, at synth, not after a deploy.
"""

from __future__ import annotations

import pytest

from cdk import names
from functions.common import deployment
from tests.infrastructure.code_calls import Call, required_actions
from tests.infrastructure.helpers import (
    Synth,
    as_list,
    function_logical_id,
    grants,
    render,
    role_of_function,
    statements_of_role,
)

TRAINING_ENTRY = f"{names.TRAINING_COMMAND[-1]}.main"  # python -m training_jobs.train → main()


def _missing(needed: dict[str, list[Call]], granted: set[str]) -> dict[str, list[str]]:
    return {
        action: [f"{call.module}:{call.line} {call.method}" for call in calls]
        for action, calls in needed.items()
        if action not in granted
    }


@pytest.mark.parametrize("spec", deployment.FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_may_do_what_its_code_calls(synth: Synth, spec: deployment.FunctionSpec) -> None:
    needed = required_actions(spec.handler)
    role = role_of_function(synth, function_logical_id(synth, spec.handler))
    granted = {action for action, _ in grants(statements_of_role(synth, role))}

    assert needed, spec.handler  # the walk found the function's AWS calls at all
    assert _missing(needed, granted) == {}


def test_the_training_job_may_do_what_its_code_calls_on_its_artifact_prefix(synth: Synth) -> None:
    needed = required_actions(TRAINING_ENTRY)
    role = synth.logical_id(synth.stack.training.job_role)
    allowed = set(grants(statements_of_role(synth, role)))

    assert _missing(needed, {action for action, _ in allowed}) == {}
    # publish_artifacts checks for an existing manifest (HeadObject = s3:GetObject) under models/, writes
    # there, and deletes what it wrote when a publish fails half-way.
    artifacts = f"<{synth.logical_id(synth.stack.storage.artifacts_bucket)}.Arn>"
    s3_needed = {action for action in needed if action.startswith("s3:") and action != "s3:ListBucket"}
    assert s3_needed >= {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    for action in s3_needed - {"s3:GetObject"}:
        assert (action, f"{artifacts}/{names.MODELS_PREFIX}*") in allowed, action
    assert ("s3:GetObject", f"{artifacts}/{names.MODELS_PREFIX}*") in allowed
    # A HEAD of a missing manifest answers 404 only with s3:ListBucket on the bucket (else 403, which the
    # job must treat as an error): the first publish of every version depends on it.
    unconditional = [
        statement
        for statement in statements_of_role(synth, role)
        if "s3:ListBucket" in as_list(statement["Action"])
        and "Condition" not in statement
        and artifacts in {render(resource) for resource in as_list(statement["Resource"])}
    ]
    assert unconditional
