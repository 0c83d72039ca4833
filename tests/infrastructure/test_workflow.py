"""The training workflow: the ASL file deployed verbatim with substitutions, the schedule group, Batch GPU."""

from __future__ import annotations

import json
import re
from typing import Any

from cdk import names
from embedrec_local.provision import function_arn, render_workflow
from functions.common import deployment, resources
from functions.training.control import LOCK_MAX_AGE
from tests.infrastructure.helpers import Synth, function_logical_id, render

ASL_PATH = names.ROOT / deployment.TRAINING_WORKFLOW_ASL
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _state_machine(synth: Synth) -> dict[str, Any]:
    machine = synth.logical_id(synth.stack.pipeline.state_machine)
    properties: dict[str, Any] = synth.resources[machine]["Properties"]
    return properties


def test_state_machine_definition_is_the_asl_file_verbatim(synth: Synth) -> None:
    # Given the definition CloudFormation will load (a file asset staged in the cloud assembly)
    key = _state_machine(synth)["DefinitionS3Location"]["Key"]
    staged = synth.outdir / f"asset.{key}"
    # Then it is byte for byte the file the local stack executes
    assert staged.read_bytes() == ASL_PATH.read_bytes()


def test_every_placeholder_is_substituted_with_its_step_function(synth: Synth) -> None:
    substitutions = _state_machine(synth)["DefinitionSubstitutions"]
    in_file = set(PLACEHOLDER.findall(ASL_PATH.read_text()))
    in_specs = {spec.asl_placeholder for spec in deployment.PIPELINE_STEPS if spec.asl_placeholder}
    assert set(substitutions) == in_file == in_specs
    for spec in deployment.PIPELINE_STEPS:
        assert spec.asl_placeholder is not None
        assert substitutions[spec.asl_placeholder] == {
            "Fn::GetAtt": [function_logical_id(synth, spec.handler), "Arn"]
        }


def test_substituted_definition_is_valid_json_whose_tasks_are_lambda_arns(synth: Synth) -> None:
    # When CloudFormation substitutes each placeholder with a function ARN
    substitutions = _state_machine(synth)["DefinitionSubstitutions"]
    arns = {
        name: f"arn:aws:lambda:us-east-1:123456789012:function:{value['Fn::GetAtt'][0]}"
        for name, value in substitutions.items()
    }
    rendered = PLACEHOLDER.sub(lambda match: arns[match.group(1)], ASL_PATH.read_text())
    # Then the definition parses and every Task invokes one of the pipeline functions
    definition = json.loads(rendered)
    tasks = [state for state in definition["States"].values() if state["Type"] == "Task"]
    assert tasks and all(task["Resource"] in arns.values() for task in tasks)


def test_state_machine_logs_everything_and_traces(synth: Synth) -> None:
    properties = _state_machine(synth)
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["StateMachineType"] == "STANDARD"


def test_schedule_group_exists(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::Scheduler::ScheduleGroup", 1)
    synth.template.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": "embedrec-training"})


def test_job_definition_asks_for_one_gpu_and_runs_the_trainer(synth: Synth) -> None:
    (definition,) = synth.of_type("AWS::Batch::JobDefinition").values()
    container = definition["Properties"]["ContainerProperties"]
    requirements = {item["Type"]: item["Value"] for item in container["ResourceRequirements"]}
    assert requirements == {
        "GPU": "1",
        "VCPU": str(names.TRAINING_VCPUS),
        "MEMORY": str(names.TRAINING_MEMORY_MIB),
    }
    assert container["Command"] == ["python", "-m", "training_jobs.train"]
    assert definition["Properties"]["PlatformCapabilities"] == ["EC2"]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    storage = synth.stack.storage
    assert env["EMBEDREC_TRAINING_JOBS_TABLE"] == {
        "Ref": synth.logical_id(storage.table(resources.TRAINING_JOBS))
    }
    assert env["EMBEDREC_DATA_BUCKET"] == {"Ref": synth.logical_id(storage.data_bucket)}
    assert env["EMBEDREC_ARTIFACTS_BUCKET"] == {"Ref": synth.logical_id(storage.artifacts_bucket)}
    assert container["JobRoleArn"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.training.job_role), "Arn"]}


def test_gpu_compute_scales_from_zero_on_g5_g6_spot_first(synth: Synth) -> None:
    environments = synth.of_type("AWS::Batch::ComputeEnvironment")
    assert len(environments) == 2
    kinds = set()
    for environment in environments.values():
        resources = environment["Properties"]["ComputeResources"]
        assert environment["Properties"]["Type"] == "managed"
        assert resources["MinvCpus"] == 0
        assert sorted(resources["InstanceTypes"]) == ["g5", "g6"]
        assert resources["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
        kinds.add(resources["Type"])
    assert kinds == {"SPOT", "EC2"}
    (queue,) = synth.of_type("AWS::Batch::JobQueue").values()
    order = sorted(queue["Properties"]["ComputeEnvironmentOrder"], key=lambda item: item["Order"])
    spot = synth.logical_id(synth.stack.training.spot_environment)
    assert render(order[0]["ComputeEnvironment"]) == f"<{spot}.ComputeEnvironmentArn>"


def test_local_stack_executes_the_definition_the_cdk_app_deploys(synth: Synth) -> None:
    # Given the staged definition, with each placeholder bound to the local stack's function ARN
    key = _state_machine(synth)["DefinitionS3Location"]["Key"]
    staged = (synth.outdir / f"asset.{key}").read_text()
    steps = deployment.PIPELINE_STEPS
    local_arns = {spec.asl_placeholder: function_arn("us-east-1", spec.name) for spec in steps}
    # Then it is exactly what `embedrec local` registers in moto's Step Functions
    bound = PLACEHOLDER.sub(lambda match: local_arns[match.group(1)], staged)
    assert json.loads(render_workflow("us-east-1")) == json.loads(bound)


def test_the_workflow_has_an_overall_timeout_that_outlasts_its_bounded_waits(synth: Synth) -> None:
    from functions.common.settings import PipelineSettings

    definition = json.loads(ASL_PATH.read_text())
    (job_definition,) = synth.of_type("AWS::Batch::JobDefinition").values()
    attempt_s = job_definition["Properties"]["Timeout"]["AttemptDurationSeconds"]
    attempts = job_definition["Properties"]["RetryStrategy"]["Attempts"]
    queued_s = PipelineSettings.model_fields["training_max_queued_seconds"].default

    # The bounded waits (capacity, then every Batch attempt) end first and reach RecordFailure; the
    # execution's TimeoutSeconds is the backstop behind them, not a second limit that cuts a job short.
    assert definition["TimeoutSeconds"] >= queued_s + attempts * attempt_s
    assert definition["TimeoutSeconds"] <= 24 * 3600
    # A tenant's training lock outlives any execution, so no second job starts beside a live one.
    assert LOCK_MAX_AGE.total_seconds() >= definition["TimeoutSeconds"]


def test_a_job_stuck_waiting_for_capacity_is_cancelled_and_recorded_as_failed() -> None:
    states = json.loads(ASL_PATH.read_text())["States"]
    stuck = [
        choice["Next"]
        for choice in states["TrainingFinished?"]["Choices"]
        if choice.get("StringEquals") == "STUCK"
    ]
    assert stuck == ["CancelTraining"]
    cancel = states["CancelTraining"]
    assert cancel["Resource"] == "${CancelTrainingFunctionArn}"
    assert cancel["Next"] == "RecordFailure" and cancel["ResultPath"] == "$.error"
    assert [catch["Next"] for catch in cancel["Catch"]] == ["RecordFailure"]  # even if cancelling fails


def test_the_cancel_function_may_only_cancel_and_terminate_batch_jobs(synth: Synth) -> None:
    from tests.infrastructure.helpers import grants, role_of_function, statements_of_role

    spec = next(spec for spec in deployment.PIPELINE_STEPS if spec.name == "cancel-training")
    role = role_of_function(synth, function_logical_id(synth, spec.handler))
    batch = {(action, resource) for action, resource in grants(statements_of_role(synth, role))}
    batch = {pair for pair in batch if pair[0].startswith("batch:")}
    assert {action for action, _ in batch} == {"batch:CancelJob", "batch:TerminateJob"}
    assert all(resource.endswith(":job/*") for _, resource in batch)


def test_schedules_are_swept_every_hour_by_the_reconcile_function(synth: Synth) -> None:
    from tests.infrastructure.helpers import grants, role_of_function, statements_of_role

    function = function_logical_id(synth, deployment.RECONCILE_SCHEDULES.handler)
    rules = [
        rule["Properties"]
        for rule in synth.of_type("AWS::Events::Rule").values()
        if any(render(target["Arn"]) == f"<{function}.Arn>" for target in rule["Properties"]["Targets"])
    ]
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(1 hour)"]
    actions = {action for action, _ in grants(statements_of_role(synth, role_of_function(synth, function)))}
    assert {a for a in actions if a.startswith("scheduler:")} == {
        "scheduler:GetSchedule",
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:ListSchedules",
    }


def test_every_function_that_reconciles_schedules_knows_the_training_window(synth: Synth) -> None:
    for spec in (deployment.API, deployment.INGEST, deployment.RECONCILE_SCHEDULES):
        environment = synth.resources[function_logical_id(synth, spec.handler)]["Properties"]["Environment"]
        assert environment["Variables"][names.ENV_TRAINING_WINDOW] == names.DEFAULT_TRAINING_WINDOW, spec.name
