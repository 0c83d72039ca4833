"""Least privilege: what each function and role may do, read from the synthesised policies."""

from __future__ import annotations

import pytest

from cdk.constructs.pipeline import STEP_ACCESS
from functions.common import deployment, resources
from tests.infrastructure.helpers import (
    Synth,
    as_list,
    function_logical_id,
    grants,
    role_of_function,
    statements_of_role,
)

DYNAMODB_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}
S3_WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def _tables_written(allowed: set[tuple[str, str]]) -> set[str]:
    """Table ARNs with a write action (their ``/index/*`` companions left out)."""
    return {
        resource
        for action, resource in allowed
        if action in DYNAMODB_WRITES and not resource.endswith("/index/*")
    }


def _function_grants(synth: Synth, spec: deployment.FunctionSpec) -> set[tuple[str, str]]:
    role = role_of_function(synth, function_logical_id(synth, spec.handler))
    return set(grants(statements_of_role(synth, role)))


def _arn(synth: Synth, construct: object) -> str:
    return f"<{synth.logical_id(construct)}.Arn>"


def _table_arn(synth: Synth, spec: resources.TableSpec) -> str:
    return _arn(synth, synth.stack.storage.table(spec))


def test_serving_writes_only_analytics_and_the_quota_buckets(synth: Synth) -> None:
    allowed = _function_grants(synth, deployment.SERVING)
    assert _tables_written(allowed) == {
        _table_arn(synth, resources.ANALYTICS),
        _table_arn(synth, resources.EVENT_IDS),  # quota#{tenant}: the shared request budgets
    }


def test_serving_reads_only_catalog_from_the_data_bucket_and_writes_no_object(synth: Synth) -> None:
    data = _arn(synth, synth.stack.storage.data_bucket)
    allowed = _function_grants(synth, deployment.SERVING)
    assert not {action for action, _ in allowed} & S3_WRITES
    data_objects = {resource for action, resource in allowed if resource.startswith(f"{data}/")}
    assert data_objects == {f"{data}/catalog/*"}
    for prefix in ("raw/", "incoming/", "datasets/", "reports/"):
        assert not any(resource.startswith(f"{data}/{prefix}") for resource in data_objects)


def test_serving_reads_models_from_artifacts(synth: Synth) -> None:
    artifacts = _arn(synth, synth.stack.storage.artifacts_bucket)
    assert ("s3:GetObject", f"{artifacts}/models/*") in _function_grants(synth, deployment.SERVING)


def test_only_the_api_reads_the_admin_key_and_api_plus_serving_the_jwt_key(synth: Synth) -> None:
    api = synth.stack.api
    readers: dict[str, set[str]] = {}
    for role_id in synth.of_type("AWS::IAM::Role"):
        for action, resource in grants(statements_of_role(synth, role_id)):
            if action == "secretsmanager:GetSecretValue":
                readers.setdefault(resource, set()).add(role_id)
    api_role = role_of_function(synth, function_logical_id(synth, deployment.API.handler))
    serving_role = role_of_function(synth, function_logical_id(synth, deployment.SERVING.handler))
    assert readers[f"<{synth.logical_id(api.admin_key)}>"] == {api_role}
    assert readers[f"<{synth.logical_id(api.jwt_secret)}>"] == {api_role, serving_role}


def test_api_cannot_write_artifacts(synth: Synth) -> None:
    artifacts = _arn(synth, synth.stack.storage.artifacts_bucket)
    for action, resource in _function_grants(synth, deployment.API):
        if resource.startswith(artifacts):
            assert action in {"s3:GetObject", "s3:ListBucket"}, (action, resource)


def test_ingest_touches_no_artifacts_and_only_its_tables(synth: Synth) -> None:
    allowed = _function_grants(synth, deployment.INGEST)
    artifacts = _arn(synth, synth.stack.storage.artifacts_bucket)
    assert not any(resource.startswith(artifacts) for _, resource in allowed)
    written = _tables_written(allowed)
    assert written == {
        _table_arn(synth, spec)
        for spec in (
            resources.UPLOADS,
            resources.EVENT_IDS,
            resources.RECENT_EVENTS,
            resources.TENANTS,
            resources.ANALYTICS,
        )
    }


def test_ingest_may_only_reconcile_schedules_never_delete_them(synth: Synth) -> None:
    allowed = _function_grants(synth, deployment.INGEST)
    actions = {action for action, _ in allowed if action.startswith("scheduler:")}
    assert actions == {"scheduler:GetSchedule", "scheduler:CreateSchedule", "scheduler:UpdateSchedule"}
    passed = {resource for action, resource in allowed if action == "iam:PassRole"}
    assert passed == {_arn(synth, synth.stack.pipeline.scheduler_role)}


def test_api_may_manage_schedules_in_its_group_and_pass_only_the_scheduler_role(synth: Synth) -> None:
    allowed = _function_grants(synth, deployment.API)
    schedules = {resource for action, resource in allowed if action.startswith("scheduler:")}
    assert {action for action, _ in allowed if action.startswith("scheduler:")} >= {
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
    }
    assert len(schedules) == 1 and next(iter(schedules)).endswith(":schedule/embedrec-training/*")
    passed = {resource for action, resource in allowed if action == "iam:PassRole"}
    assert passed == {_arn(synth, synth.stack.pipeline.scheduler_role)}


def test_api_may_start_and_describe_training_executions(synth: Synth) -> None:
    allowed = _function_grants(synth, deployment.API)
    machine = f"<{synth.logical_id(synth.stack.pipeline.state_machine)}>"
    assert ("states:StartExecution", machine) in allowed
    described = [resource for action, resource in allowed if action == "states:DescribeExecution"]
    assert len(described) == 1 and ":execution:" in described[0] and described[0].endswith(":*")


def test_scheduler_role_only_starts_the_workflow(synth: Synth) -> None:
    role_id = synth.logical_id(synth.stack.pipeline.scheduler_role)
    trust = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [statement["Principal"] for statement in trust] == [{"Service": "scheduler.amazonaws.com"}]
    machine = f"<{synth.logical_id(synth.stack.pipeline.state_machine)}>"
    assert set(grants(statements_of_role(synth, role_id))) == {("states:StartExecution", machine)}


def test_state_machine_invokes_only_the_pipeline_functions(synth: Synth) -> None:
    role_id = str(
        synth.resources[synth.logical_id(synth.stack.pipeline.state_machine)]["Properties"]["RoleArn"][
            "Fn::GetAtt"
        ][0]
    )
    invoked = {
        resource for action, resource in grants(statements_of_role(synth, role_id)) if "lambda:" in action
    }
    expected = {f"<{function_logical_id(synth, spec.handler)}.Arn>" for spec in deployment.PIPELINE_STEPS}
    assert invoked == expected


def test_training_job_role_reads_datasets_publishes_models_updates_its_job(synth: Synth) -> None:
    storage = synth.stack.storage
    role_id = synth.logical_id(synth.stack.training.job_role)
    data, artifacts = _arn(synth, storage.data_bucket), _arn(synth, storage.artifacts_bucket)
    allowed = set(grants(statements_of_role(synth, role_id)))
    objects = {
        (action, resource) for action, resource in allowed if action.startswith("s3:") and "/" in resource
    }
    # Nothing outside datasets/ (read; its checkpoints written there) and models/ (its own artifacts);
    # tests/infrastructure/test_iam_from_code.py checks that every call of the job's code is covered.
    assert objects == {
        ("s3:GetObject", f"{data}/datasets/*"),
        ("s3:PutObject", f"{data}/datasets/*/*/checkpoints/*"),
        ("s3:AbortMultipartUpload", f"{data}/datasets/*/*/checkpoints/*"),
        ("s3:GetObject", f"{artifacts}/models/*"),
        ("s3:PutObject", f"{artifacts}/models/*"),
        ("s3:AbortMultipartUpload", f"{artifacts}/models/*"),
        ("s3:DeleteObject", f"{artifacts}/models/*"),
    }
    tables = {(action, resource) for action, resource in allowed if action.startswith("dynamodb:")}
    jobs = _table_arn(synth, resources.TRAINING_JOBS)
    assert tables == {("dynamodb:GetItem", jobs), ("dynamodb:UpdateItem", jobs)}


@pytest.mark.parametrize("spec", deployment.PIPELINE_STEPS, ids=lambda spec: spec.name)
def test_pipeline_steps_write_only_their_tables(synth: Synth, spec: deployment.FunctionSpec) -> None:
    allowed = _function_grants(synth, spec)
    written = _tables_written(allowed)
    assert written == {_table_arn(synth, table) for table in STEP_ACCESS[spec.name].tables_write}
    submits = {action for action, _ in allowed if action == "batch:SubmitJob"}
    assert bool(submits) == (spec.name == "submit-training")


def test_no_policy_grants_full_service_wildcards(synth: Synth) -> None:
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in as_list(statement["Action"]):
                assert not str(action).endswith(":*"), action
