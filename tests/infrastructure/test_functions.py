"""Every Lambda function: handler, runtime, layers, sizes and environment come from its FunctionSpec."""

from __future__ import annotations

from typing import Any

import pytest

from cdk import names
from functions.common import deployment, resources
from tests.infrastructure.helpers import Synth, function_logical_id, render


def _properties(synth: Synth, spec: deployment.FunctionSpec) -> dict[str, Any]:
    properties: dict[str, Any] = synth.resources[function_logical_id(synth, spec.handler)]["Properties"]
    return properties


def _layer_ids(synth: Synth) -> dict[str, str]:
    return {name: synth.logical_id(layer) for name, layer in synth.stack.runtime.layers.items()}


def test_one_function_per_spec(synth: Synth) -> None:
    handlers = {spec.handler for spec in deployment.FUNCTIONS}
    ours = [
        props["Properties"]["Handler"]
        for props in synth.of_type("AWS::Lambda::Function").values()
        if props["Properties"].get("Handler", "").startswith("functions.")
    ]
    assert sorted(ours) == sorted(handlers)


@pytest.mark.parametrize("spec", deployment.FUNCTIONS, ids=lambda spec: spec.name)
def test_function_matches_its_spec(synth: Synth, spec: deployment.FunctionSpec) -> None:
    properties = _properties(synth, spec)
    layers = _layer_ids(synth)
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["x86_64"]  # the layers are built for manylinux x86_64
    assert properties["MemorySize"] == spec.memory_mb
    assert properties["Timeout"] == spec.timeout_s
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Layers"] == [{"Ref": layers[names.BASE_LAYER]}, {"Ref": layers[spec.layer]}]


@pytest.mark.parametrize("spec", deployment.FUNCTIONS, ids=lambda spec: spec.name)
def test_function_gets_storage_names_and_powertools_settings(
    synth: Synth, spec: deployment.FunctionSpec
) -> None:
    env = _properties(synth, spec)["Environment"]["Variables"]
    storage = synth.stack.storage
    for table in resources.TABLES:
        assert env[table.env_var] == {"Ref": synth.logical_id(storage.table(table))}
    for bucket in resources.BUCKETS:
        assert env[bucket.env_var] == {"Ref": synth.logical_id(storage.buckets[bucket.logical_name])}
    assert env["POWERTOOLS_SERVICE_NAME"] == f"embedrec-{spec.name}"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "embedrec"
    assert env["POWERTOOLS_LOG_LEVEL"] == names.LOG_LEVEL


def test_api_function_environment(synth: Synth) -> None:
    env = _properties(synth, deployment.API)["Environment"]["Variables"]
    api, pipeline = synth.stack.api, synth.stack.pipeline
    assert env[names.ENV_JWT_SECRET_ARN] == {"Ref": synth.logical_id(api.jwt_secret)}
    assert env[names.ENV_ADMIN_KEY_ARN] == {"Ref": synth.logical_id(api.admin_key)}
    assert env[names.ENV_STATE_MACHINE_ARN] == {"Ref": synth.logical_id(pipeline.state_machine)}
    assert env[names.ENV_SCHEDULE_GROUP] == names.SCHEDULE_GROUP == "embedrec-training"
    assert render(env[names.ENV_SCHEDULER_ROLE_ARN]) == f"<{synth.logical_id(pipeline.scheduler_role)}.Arn>"


def test_serving_function_gets_the_jwt_key_but_not_the_admin_key(synth: Synth) -> None:
    env = _properties(synth, deployment.SERVING)["Environment"]["Variables"]
    assert env[names.ENV_JWT_SECRET_ARN] == {"Ref": synth.logical_id(synth.stack.api.jwt_secret)}
    assert names.ENV_ADMIN_KEY_ARN not in env


@pytest.mark.parametrize("spec", deployment.PIPELINE_STEPS, ids=lambda spec: spec.name)
def test_pipeline_steps_know_the_batch_queue_and_job_definition(
    synth: Synth, spec: deployment.FunctionSpec
) -> None:
    env = _properties(synth, spec)["Environment"]["Variables"]
    training = synth.stack.training
    queue, definition = synth.logical_id(training.job_queue), synth.logical_id(training.job_definition)
    # Both are ARNs: the queue's from GetAtt JobQueueArn, the job definition's (with revision) from Ref.
    assert render(env[names.ENV_TRAINING_JOB_QUEUE]) == f"<{queue}.JobQueueArn>"
    assert render(env[names.ENV_TRAINING_JOB_DEFINITION]) == f"<{definition}>"


def test_no_function_outside_the_pipeline_gets_batch_settings(synth: Synth) -> None:
    for spec in (deployment.API, deployment.SERVING, deployment.INGEST):
        env = _properties(synth, spec)["Environment"]["Variables"]
        assert names.ENV_TRAINING_JOB_QUEUE not in env


@pytest.mark.parametrize("spec", deployment.FUNCTIONS, ids=lambda spec: spec.name)
def test_snap_start_only_where_the_spec_asks(synth: Synth, spec: deployment.FunctionSpec) -> None:
    properties = _properties(synth, spec)
    if spec.snap_start:
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        # SnapStart excludes provisioned concurrency, EFS and ephemeral storage above 512 MB.
        assert "FileSystemConfigs" not in properties
        assert properties.get("EphemeralStorage", {"Size": 512})["Size"] <= 512
    else:
        assert "SnapStart" not in properties


def test_serving_is_invoked_through_an_alias_of_its_published_version(synth: Synth) -> None:
    serving_id = function_logical_id(synth, deployment.SERVING.handler)
    (alias,) = synth.of_type("AWS::Lambda::Alias").values()
    versions = synth.of_type("AWS::Lambda::Version")
    (version_id,) = (
        vid for vid, v in versions.items() if v["Properties"]["FunctionName"] == {"Ref": serving_id}
    )

    assert alias["Properties"]["Name"] == names.LIVE_ALIAS
    assert alias["Properties"]["FunctionName"] == {"Ref": serving_id}
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert not synth.of_type("AWS::Lambda::EventInvokeConfig")
