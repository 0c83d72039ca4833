"""Entry points of the training workflow's Lambda tasks (one function each, see ``deployment.py``).

Each validates the execution state into its task's input model (``contract.workflow``), calls one
step, and returns what the state machine stores under the task's ``ResultPath`` (the output model's
JSON). Errors propagate by class name, which the ASL's Retry/Catch match.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from contract.model_types import DEFAULT_MODEL_TYPE
from contract.workflow import (
    CancelTrainingInput,
    CheckTrainingInput,
    DecisionInput,
    EvaluateCandidateInput,
    ExecutionInput,
    OpenJobInput,
    PrepareDatasetInput,
    RecordFailureInput,
    SubmitTrainingInput,
)
from functions.analytics import metric_names as names
from functions.common import aws
from functions.common.container import per_container
from functions.common.observability import MetricUnit, logger, metrics
from functions.common.settings import get_pipeline_settings, get_schedule_settings
from functions.identity.store.tenants import TenantRepository
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import UploadRepository
from functions.training import steps
from functions.training.config import DatasetOptions
from functions.training.control import JobRequest, open_job
from functions.training.schedule import TrainingSchedules, TrainingWindow, reconcile_all
from functions.training.store.batch import TrainingJobQueue
from functions.training.store.model_registry import ModelRegistry, ModelVersion
from functions.training.store.schedules import ScheduleStore
from functions.training.store.training_jobs import TrainingJobRepository

State = dict[str, Any]


@per_container
def pipeline_context() -> steps.PipelineContext:
    """The container's repositories and clients."""
    settings = get_pipeline_settings()
    dynamodb = aws.dynamodb_resource()
    return steps.PipelineContext(
        data=DataStore(aws.s3_client(), settings.data_bucket),
        artifacts=DataStore(aws.s3_client(), settings.artifacts_bucket),
        jobs=TrainingJobRepository(dynamodb.Table(settings.training_jobs_table)),
        registry=ModelRegistry(dynamodb.Table(settings.model_registry_table)),
        tenants=TenantRepository(dynamodb.Table(settings.tenants_table)),
        uploads=UploadRepository(dynamodb.Table(settings.uploads_table)),
        batch=TrainingJobQueue(
            aws.batch_client(), settings.training_job_queue, settings.training_job_definition
        ),
    )


def _now() -> datetime:
    return datetime.now(UTC)


@logger.inject_lambda_context
def handle_open_job(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """OpenJob: a scheduled execution opens its own job (the API opens it before starting one)."""
    ctx = pipeline_context()
    tenant = ctx.tenants.get(OpenJobInput.model_validate(event).tenant_id)
    model_type = str(tenant.settings.get("default_model", DEFAULT_MODEL_TYPE))
    request = JobRequest(model_type=model_type, config={}, trigger="schedule")
    job = open_job(ctx.jobs, tenant.tenant_id, request, now=_now())
    return ExecutionInput(
        tenant_id=tenant.tenant_id,
        job_id=job.job_id,
        model_type=model_type,
        config={},
        poll_seconds=get_pipeline_settings().training_poll_seconds,
    ).as_json()


@logger.inject_lambda_context
def handle_prepare_dataset(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """PrepareDataset."""
    settings = get_pipeline_settings()
    task = PrepareDatasetInput.model_validate(event)
    options = DatasetOptions.model_validate(task.config or {})
    return steps.prepare_dataset(
        pipeline_context(),
        task,
        now=_now(),
        window_days=options.window_days or settings.default_window_days,
        as_of=options.window_end(),
        validation_fraction=settings.validation_fraction,
    ).as_json()


@logger.inject_lambda_context
def handle_submit_training(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """SubmitTraining."""
    return steps.submit_training(
        pipeline_context(),
        SubmitTrainingInput.model_validate(event),
        default_floor=get_pipeline_settings().default_quality_floor,
    ).as_json()


@logger.inject_lambda_context
def handle_check_training(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """CheckTraining: RUNNING / SUCCEEDED / FAILED, or STUCK after too long without capacity."""
    settings = get_pipeline_settings()
    task = CheckTrainingInput.model_validate(event)
    poll_seconds = max(1, task.poll_seconds or settings.training_poll_seconds)
    return steps.check_training(
        pipeline_context(),
        task,
        max_queued_polls=math.ceil(settings.training_max_queued_seconds / poll_seconds),
    ).as_json()


@logger.inject_lambda_context
@metrics.log_metrics
def handle_cancel_training(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """CancelTraining: cancel a job stuck waiting for capacity; RecordFailure follows."""
    error = steps.cancel_training(pipeline_context(), CancelTrainingInput.model_validate(event)).as_json()
    logger.warning("training job cancelled", extra={"tenant_id": event.get("tenant_id"), "error": error})
    metrics.add_metric(name="TrainingJobsCancelled", unit=MetricUnit.Count, value=1)
    return error


@logger.inject_lambda_context
@metrics.log_metrics
def handle_evaluate_candidate(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """EvaluateCandidate."""
    task = EvaluateCandidateInput.model_validate(event)
    result = steps.evaluate_candidate(pipeline_context(), task, now=_now())
    metrics.add_metric(name="CandidateNDCG10", unit=MetricUnit.NoUnit, value=result.candidate_ndcg_10)
    job = pipeline_context().jobs.get(task.tenant_id, task.job_id)
    seconds = (job.metrics or {}).get("training_time_seconds")
    if seconds is not None:  # the trainer's own measure: the loop, not queueing or start-up
        metrics.add_metric(name=names.TRAINING_DURATION, unit=MetricUnit.Seconds, value=float(seconds))
    return result.as_json()


@logger.inject_lambda_context
@metrics.log_metrics
def handle_promote_model(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """PromoteModel."""
    ctx = pipeline_context()
    task = DecisionInput.model_validate(event)
    result = steps.promote_model(ctx, task, now=_now())
    candidate = task.evaluation.candidate_ndcg_10
    metrics.add_metric(name=names.MODEL_NDCG10, unit=MetricUnit.NoUnit, value=candidate)
    metrics.add_metric(name="ModelsPromoted", unit=MetricUnit.Count, value=1)
    lift = lift_over_popularity(candidate, ctx.registry.get_version(task.tenant_id, task.dataset.version))
    if lift is not None:
        metrics.add_metric(name=names.MODEL_LIFT, unit=MetricUnit.NoUnit, value=lift)
    return result.as_json()


def lift_over_popularity(candidate_ndcg: float, version: ModelVersion) -> float | None:
    """The model's NDCG@10 over the popularity baseline's, both measured on the same holdout.

    The job's gate measured both on its holdout (preferred); otherwise the validation split's figures.
    None when the baseline scored 0 (no lift can be stated; the absolute NDCG is still emitted).
    """
    gate = version.gate
    if gate is not None and gate.candidate is not None and gate.popularity is not None:
        candidate_ndcg, baseline = gate.candidate, gate.popularity
    else:
        baseline = float((version.baseline_metrics or {}).get("ndcg_10", 0.0))
    return round(candidate_ndcg / baseline, 4) if baseline > 0 else None


@logger.inject_lambda_context
@metrics.log_metrics
def handle_reject_candidate(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """RejectCandidate."""
    result = steps.reject_candidate(pipeline_context(), DecisionInput.model_validate(event), now=_now())
    metrics.add_metric(name="ModelsRejected", unit=MetricUnit.Count, value=1)
    return result.as_json()


@logger.inject_lambda_context
@metrics.log_metrics
def handle_record_failure(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """RecordFailure."""
    task = RecordFailureInput.model_validate(event)
    result = steps.record_failure(pipeline_context(), task, now=_now())
    logger.warning("training workflow failed", extra={"tenant_id": task.tenant_id, "error": result.error})
    metrics.add_metric(name="TrainingFailures", unit=MetricUnit.Count, value=1)
    return result.as_json()


@logger.inject_lambda_context
@metrics.log_metrics
def handle_reconcile_schedules(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """The hourly sweep: every tenant's retraining schedule made what it should be, orphans deleted."""
    settings = get_schedule_settings()
    schedules = TrainingSchedules(
        ScheduleStore(aws.scheduler_client(), settings.schedule_group),
        settings.scheduler_role_arn,
        settings.state_machine_arn,
        TrainingWindow.parse(settings.training_window),
    )
    tenants = TenantRepository(aws.dynamodb_resource().Table(settings.tenants_table))
    result = reconcile_all(tenants, schedules).as_dict()
    logger.info("training schedules reconciled", extra={"schedules": result})
    for name, value in result.items():
        metrics.add_metric(name=f"Schedules{name.capitalize()}", unit=MetricUnit.Count, value=value)
    return result
