"""Entry points of the training workflow's Lambda tasks (one function each, see ``deployment.py``).

Each parses the execution state, calls one step, and returns what the state machine stores under
the task's ``ResultPath``. Errors propagate by class name, which the ASL's Retry/Catch match.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.analytics import metric_names as names
from functions.common import aws
from functions.common.observability import MetricUnit, logger, metrics
from functions.common.settings import get_pipeline_settings
from functions.pipeline import steps
from functions.pipeline.config import DEFAULT_MODEL_TYPE, DatasetOptions
from functions.pipeline.control import open_job
from functions.repositories.data_store import DataStore
from functions.repositories.model_registry import ModelRegistry
from functions.repositories.tenants import TenantRepository
from functions.repositories.training_jobs import TrainingJobRepository
from functions.repositories.uploads import UploadRepository

State = dict[str, Any]


@lru_cache(maxsize=1)
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
        batch=aws.batch_client(),
        job_queue=settings.training_job_queue,
        job_definition=settings.training_job_definition,
    )


def _now() -> datetime:
    return datetime.now(UTC)


@logger.inject_lambda_context
def handle_open_job(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """OpenJob: a scheduled execution opens its own job (the API opens it before starting one)."""
    ctx = pipeline_context()
    tenant = ctx.tenants.get(event["tenant_id"])
    model_type = str(tenant.settings.get("default_model", DEFAULT_MODEL_TYPE))
    job = open_job(
        ctx.jobs, tenant.tenant_id, model_type=model_type, config={}, trigger="schedule", now=_now()
    )
    return {
        "tenant_id": tenant.tenant_id,
        "job_id": job["job_id"],
        "model_type": model_type,
        "config": {},
        "poll_seconds": get_pipeline_settings().training_poll_seconds,
    }


@logger.inject_lambda_context
def handle_prepare_dataset(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """PrepareDataset."""
    settings = get_pipeline_settings()
    options = DatasetOptions.model_validate(event.get("config") or {})
    return steps.prepare_dataset(
        pipeline_context(),
        event,
        now=_now(),
        window_days=options.window_days or settings.default_window_days,
        as_of=options.window_end(),
        validation_fraction=settings.validation_fraction,
    )


@logger.inject_lambda_context
def handle_submit_training(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """SubmitTraining."""
    return steps.submit_training(pipeline_context(), event)


@logger.inject_lambda_context
def handle_check_training(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """CheckTraining."""
    return steps.check_training(pipeline_context(), event)


@logger.inject_lambda_context
@metrics.log_metrics
def handle_evaluate_candidate(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """EvaluateCandidate."""
    result = steps.evaluate_candidate(
        pipeline_context(), event, now=_now(), default_floor=get_pipeline_settings().default_quality_floor
    )
    metrics.add_metric(name="CandidateNDCG10", unit=MetricUnit.NoUnit, value=result["candidate_ndcg_10"])
    job = pipeline_context().jobs.get(event["tenant_id"], event["job_id"])
    seconds = job.get("metrics", {}).get("training_time_seconds")
    if seconds is not None:  # the trainer's own measure: the loop, not queueing or start-up
        metrics.add_metric(name=names.TRAINING_DURATION, unit=MetricUnit.Seconds, value=float(seconds))
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handle_promote_model(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """PromoteModel."""
    result = steps.promote_model(pipeline_context(), event, now=_now())
    metrics.add_metric(
        name="ModelNDCG10", unit=MetricUnit.NoUnit, value=event["evaluation"]["candidate_ndcg_10"]
    )
    metrics.add_metric(name="ModelsPromoted", unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handle_reject_candidate(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """RejectCandidate."""
    result = steps.reject_candidate(pipeline_context(), event, now=_now())
    metrics.add_metric(name="ModelsRejected", unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handle_record_failure(event: State, context: LambdaContext) -> State:  # noqa: ARG001
    """RecordFailure."""
    result = steps.record_failure(pipeline_context(), event, now=_now())
    logger.warning(
        "training workflow failed", extra={"tenant_id": event.get("tenant_id"), "error": result["error"]}
    )
    metrics.add_metric(name="TrainingFailures", unit=MetricUnit.Count, value=1)
    return result
