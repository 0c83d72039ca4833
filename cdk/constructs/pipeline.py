"""Pipeline: the step functions, the training workflow state machine, and its scheduling.

The state machine is ``functions/training/training_workflow.asl.json`` as it is, with one
``${...}`` substitution per pipeline ``FunctionSpec.asl_placeholder`` — the same file the embedded
local stack executes in moto. Per-tenant schedules are created at run time by the ``api`` function
in the ``embedrec-training`` schedule group, starting executions through ``scheduler_role``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk import names
from cdk.constructs.grants import (
    Grantee,
    ObjectAccess,
    acknowledge_wildcard,
    grant_objects,
    grant_table,
    nag_arn,
    nag_arn_pattern,
)
from cdk.constructs.runtime import FunctionRuntime
from cdk.constructs.storage import Storage
from cdk.constructs.training import Training
from functions.common import deployment, resources
from functions.training.schedule import TrainingWindow


@dataclass(frozen=True)
class StepAccess:
    """What one pipeline step may touch."""

    tables_read: tuple[resources.TableSpec, ...] = ()
    tables_write: tuple[resources.TableSpec, ...] = (resources.TRAINING_JOBS,)
    data: tuple[tuple[tuple[ObjectAccess, ...], tuple[str, ...]], ...] = ()
    artifacts: tuple[tuple[tuple[ObjectAccess, ...], tuple[str, ...]], ...] = ()
    submit_jobs: bool = False
    describe_jobs: bool = False
    cancel_jobs: bool = False


_MODELS = (names.MODELS_PREFIX,)
_JOBS_AND_REGISTRY = (resources.TRAINING_JOBS, resources.MODEL_REGISTRY)
# Read from functions/training/steps.py; a step without an entry fails synth (declare it here).
STEP_ACCESS: dict[str, StepAccess] = {
    "open-job": StepAccess(tables_read=(resources.TENANTS,)),
    "prepare-dataset": StepAccess(
        # next model version; committed uploads (a raw object without its upload record is not visible)
        tables_read=(resources.TENANTS, resources.MODEL_REGISTRY, resources.UPLOADS),
        data=(
            (("read",), (names.RAW_PREFIX, names.CATALOG_PREFIX)),
            (("read", "write"), (names.DATASETS_PREFIX,)),
        ),
    ),
    # the active pointer (the gate's rival, passed to the job) and the tenant's quality floor
    "submit-training": StepAccess(
        tables_read=(resources.TENANTS, resources.MODEL_REGISTRY), submit_jobs=True
    ),
    "check-training": StepAccess(describe_jobs=True, artifacts=((("read",), _MODELS),)),
    # Evaluation records the candidate version in the registry (not active yet).
    "evaluate-candidate": StepAccess(
        tables_read=(resources.TENANTS,), tables_write=_JOBS_AND_REGISTRY, artifacts=((("read",), _MODELS),)
    ),
    # Promotion/rejection switch or annotate the registry and write decision.json beside the manifest.
    "promote-model": StepAccess(tables_write=_JOBS_AND_REGISTRY, artifacts=((("read", "write"), _MODELS),)),
    "reject-candidate": StepAccess(
        tables_write=_JOBS_AND_REGISTRY, artifacts=((("read", "write"), _MODELS),)
    ),
    "record-failure": StepAccess(),
    # A job stuck waiting for GPU capacity is cancelled (CancelJob) or, if it started meanwhile, terminated.
    "cancel-training": StepAccess(tables_write=(), cancel_jobs=True),
}


class Pipeline(Construct):
    """One function per pipeline step, the workflow state machine, the schedule group and role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: FunctionRuntime,
        storage: Storage,
        training: Training,
        training_window: str = names.DEFAULT_TRAINING_WINDOW,
    ) -> None:
        super().__init__(scope, construct_id)
        TrainingWindow.parse(training_window)  # a malformed window fails synth, not the first ingestion
        self.training_window = training_window
        self.functions: dict[str, lambda_.Function] = {}
        for spec in deployment.PIPELINE_STEPS:
            function = runtime.function(
                self,
                spec,
                environment={
                    names.ENV_TRAINING_JOB_QUEUE: training.job_queue.job_queue_arn,
                    names.ENV_TRAINING_JOB_DEFINITION: training.job_definition.job_definition_arn,
                },
            )
            access = STEP_ACCESS.get(spec.name)
            if access is None:
                raise KeyError(f"pipeline step {spec.name!r} has no STEP_ACCESS entry in {__name__}")
            self._grant(function, access, storage, training)
            self.functions[spec.name] = function

        log_group = logs.LogGroup(
            self,
            "WorkflowLogs",
            # The vendedlogs prefix keeps CloudWatch's resource policy small (AWS guidance for SFN logs).
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-training-workflow",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "TrainingWorkflow",
            comment="embedrec training workflow (functions/training/training_workflow.asl.json)",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(names.ROOT / deployment.TRAINING_WORKFLOW_ASL)),
            definition_substitutions=self.definition_substitutions(),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        # Only the step functions, unqualified (the ASL names them by plain ARN): no ":*" wildcard.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn for function in self.functions.values()],
            )
        )
        stack = Stack.of(self)
        self.execution_arn_pattern = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        self.schedule_group = scheduler.ScheduleGroup(
            self,
            "ScheduleGroup",
            schedule_group_name=names.SCHEDULE_GROUP,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.schedule_group_name = names.SCHEDULE_GROUP
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            description="EventBridge Scheduler: starts the training workflow for a tenant's schedule",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        self.state_machine.grant_start_execution(self.scheduler_role)
        self._acknowledge()
        self.reconcile_function = self._schedule_sweep(runtime, storage)

    def schedule_environment(self) -> dict[str, str]:
        """Env vars of a function that creates or enables tenants' schedules."""
        return {
            names.ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn,
            names.ENV_SCHEDULE_GROUP: self.schedule_group_name,
            names.ENV_SCHEDULER_ROLE_ARN: self.scheduler_role.role_arn,
            names.ENV_TRAINING_WINDOW: self.training_window,
        }

    def _schedule_sweep(self, runtime: FunctionRuntime, storage: Storage) -> lambda_.Function:
        """The hourly ``reconcile-schedules`` function: every tenant's schedule repaired, orphans deleted."""
        function = runtime.function(
            self, deployment.RECONCILE_SCHEDULES, environment=self.schedule_environment()
        )
        grant_table(function, storage.table(resources.TENANTS), resources.TENANTS, write=False)
        self.grant_schedules(function, ("GetSchedule", "CreateSchedule", "UpdateSchedule", "DeleteSchedule"))
        # ListSchedules supports no resource-level permissions (it is read-only: names and states).
        function.add_to_role_policy(iam.PolicyStatement(actions=["scheduler:ListSchedules"], resources=["*"]))
        events.Rule(
            self,
            "ReconcileSchedulesEveryHour",
            description="embedrec: reconcile tenants' retraining schedules",
            schedule=events.Schedule.rate(Duration.minutes(names.RECONCILE_SCHEDULES_EVERY_MINUTES)),
            targets=[targets.LambdaFunction(function, retry_attempts=2)],
        )
        return function

    def grant_schedules(self, grantee: Grantee, actions: Sequence[str]) -> None:
        """``scheduler:<action>`` on the schedules of the group only, and passing the scheduler role."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"scheduler:{action}" for action in actions],
                resources=[
                    Stack.of(self).format_arn(
                        service="scheduler",
                        resource="schedule",
                        resource_name=f"{self.schedule_group_name}/*",
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.scheduler_role.grant_pass_role(grantee.grant_principal)
        acknowledge_wildcard(
            grantee,
            nag_arn_pattern("scheduler", f"schedule/{self.schedule_group_name}/*"),
            "Schedules are created per tenant at run time (retrain-<tenant>); the wildcard is confined to "
            "embedrec's own schedule group.",
        )

    def grant_describe_executions(self, grantee: Grantee) -> None:
        """``states:DescribeExecution`` on this state machine's executions only."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[self.execution_arn_pattern])
        )
        acknowledge_wildcard(
            grantee,
            nag_arn_pattern("states", f"execution:{nag_arn(self.state_machine, 'Name')}:*"),
            "Execution names are per training job (run time); the wildcard is confined to the executions "
            "of the training workflow.",
        )

    def definition_substitutions(self) -> dict[str, str]:
        """``${placeholder}`` → the step function's ARN, for every pipeline spec."""
        substitutions: dict[str, str] = {}
        for spec in deployment.PIPELINE_STEPS:
            if spec.asl_placeholder is not None:
                substitutions[spec.asl_placeholder] = self.functions[spec.name].function_arn
        return substitutions

    def _grant(
        self, function: lambda_.Function, access: StepAccess, storage: Storage, training: Training
    ) -> None:
        for spec in access.tables_read:
            grant_table(function, storage.table(spec), spec, write=False)
        for spec in access.tables_write:
            grant_table(function, storage.table(spec), spec, write=True)
        for kinds, prefixes in access.data:
            grant_objects(function, storage.data_bucket, kinds, prefixes)
        for kinds, prefixes in access.artifacts:
            grant_objects(function, storage.artifacts_bucket, kinds, prefixes)
        if access.submit_jobs:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["batch:SubmitJob"],
                    resources=[training.job_queue.job_queue_arn, training.job_definition.job_definition_arn],
                )
            )
        if access.cancel_jobs:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["batch:CancelJob", "batch:TerminateJob"],
                    resources=[
                        Stack.of(self).format_arn(
                            service="batch",
                            resource="job",
                            resource_name="*",
                            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                        )
                    ],
                )
            )
            acknowledge_wildcard(
                function,
                nag_arn_pattern("batch", "job/*"),
                "Batch job ids are assigned at submission (run time); the wildcard is confined to jobs of "
                "this account and region, and only cancels or terminates them.",
            )
        if access.describe_jobs:
            function.add_to_role_policy(iam.PolicyStatement(actions=["batch:DescribeJobs"], resources=["*"]))
            Validations.of(function).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason="batch:DescribeJobs supports no resource-level permissions (AWS service "
                    "authorization reference); it is read-only.",
                )
            )

    def _acknowledge(self) -> None:
        Validations.of(self.state_machine).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Step Functions log delivery and X-Ray actions (logs:CreateLogDelivery..., "
                "xray:PutTraceSegments) support no resource-level permissions.",
            )
        )
