"""The training workflow's steps. Each takes its task's input model and returns its output model.

Entry points in ``handlers.py`` validate the Step Functions event into the task's input model
(``contract.workflow``), call exactly one of these and return the output's JSON (``as_json()``); a step
also accepts the raw state (validated here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contract import layout
from contract.manifest import Manifest
from contract.training_job import TrainingJobFields
from contract.workflow import (
    CancelTrainingInput,
    CheckTrainingInput,
    DataSpan,
    DecisionInput,
    EvaluateCandidateInput,
    Evaluation,
    FailureRecord,
    PrepareDatasetInput,
    PreparedDataset,
    Promotion,
    RecordFailureInput,
    StepError,
    SubmitTrainingInput,
    TrainingState,
)
from functions.common.dynamo import to_iso
from functions.common.errors import NotFoundError, TrainingFailedError
from functions.identity.store.tenants import TenantRepository
from functions.ingestion.store.data_store import DataStore
from functions.ingestion.store.uploads import UploadRepository
from functions.training.config import trainer_config
from functions.training.dataset import prepare_snapshot
from functions.training.store.batch import TrainingJobQueue
from functions.training.store.model_registry import ActivePointer, GateSummary, ModelRegistry, ModelVersion
from functions.training.store.training_jobs import TrainingJobRepository

_RUNNING_STATES = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"}
_QUEUED_STATES = {"SUBMITTED", "PENDING", "RUNNABLE"}  # waiting for capacity: may wait for ever


@dataclass(frozen=True)
class PipelineContext:
    """What the steps work with (built once per container by the entry points)."""

    data: DataStore
    artifacts: DataStore
    jobs: TrainingJobRepository
    registry: ModelRegistry
    tenants: TenantRepository
    uploads: UploadRepository
    batch: TrainingJobQueue


State = Mapping[str, Any]


def prepare_dataset(
    ctx: PipelineContext,
    state: PrepareDatasetInput | State,
    *,
    now: datetime,
    window_days: int,
    validation_fraction: float,
    as_of: datetime | None = None,
) -> PreparedDataset:
    """Snapshot the tenant's data for this job and allocate the candidate's version name."""
    task = PrepareDatasetInput.model_validate(state)
    tenant_id, job_id = task.tenant_id, task.job_id
    snapshot = prepare_snapshot(
        ctx.data,
        ctx.uploads,
        tenant_id,
        job_id,
        window_days=window_days,
        as_of=as_of,
        validation_fraction=validation_fraction,
    )
    version = ctx.registry.next_version(tenant_id, task.model_type)
    result = PreparedDataset(
        uri=f"s3://{ctx.data.bucket}/{snapshot.prefix}",
        version=version,
        interactions=snapshot.interactions,
        validation=snapshot.validation,
        users=snapshot.users,
        items=snapshot.items,
        window_start=to_iso(snapshot.window.start),
        window_end=to_iso(snapshot.window.end),
        window=snapshot.window.as_dict(),
        data_span=DataSpan(first=to_iso(snapshot.data_span.first), last=to_iso(snapshot.data_span.last)),
        prepared_at=to_iso(now),
    )
    ctx.jobs.update(tenant_id, job_id, TrainingJobFields(model_version=version, dataset=result.as_json()))
    return result


def quality_floor(ctx: PipelineContext, tenant_id: str, default_floor: float) -> float:
    """The tenant's ``quality_floor`` setting, else the deployment's default."""
    settings = ctx.tenants.get(tenant_id).settings
    return float(settings.get("quality_floor", default_floor))  # type: ignore[arg-type]


def submit_training(
    ctx: PipelineContext, state: SubmitTrainingInput | State, *, default_floor: float
) -> TrainingState:
    """Submit the training container to the GPU job queue, naming the active model it must beat.

    The job judges its candidate against the active version's own artifacts on the same holdout
    (``training_jobs/gate.py``); the pointer's version and revision ride along so that EvaluateCandidate
    can tell whether the active model changed while the job ran.
    """
    task = SubmitTrainingInput.model_validate(state)
    tenant_id, job_id, dataset = task.tenant_id, task.job_id, task.dataset
    config = {
        "model_type": task.model_type,
        **trainer_config(task.config or {}),
        "quality_floor": quality_floor(ctx, tenant_id, default_floor),
    }
    active = ctx.registry.active(tenant_id)
    # The container's contract (training_jobs/train.py); the job definition adds the table and bucket names.
    environment = {
        "EMBEDREC_TENANT_ID": tenant_id,
        "EMBEDREC_JOB_ID": job_id,
        "EMBEDREC_DATASET_URI": dataset.uri,
        "EMBEDREC_MODEL_VERSION": dataset.version,
        "EMBEDREC_TRAINING_CONFIG": json.dumps(config),
    }
    if active is not None:
        environment["EMBEDREC_ACTIVE_MANIFEST_KEY"] = active.manifest_key
    batch_job_id = ctx.batch.enqueue(
        f"embedrec-{job_id}", environment, tags={"tenant_id": tenant_id, "job_id": job_id}
    )
    ctx.jobs.update(tenant_id, job_id, TrainingJobFields(batch_job_id=batch_job_id))
    return TrainingState(
        batch_job_id=batch_job_id,
        state="SUBMITTED",
        active_version=active.version if active else None,
        active_revision=active.revision if active else None,
    )


def check_training(
    ctx: PipelineContext, state: CheckTrainingInput | State, *, max_queued_polls: int | None = None
) -> TrainingState:
    """The Batch job's state, folded to RUNNING / SUCCEEDED / FAILED, with the trainer's reason.

    ``queued_polls`` counts the consecutive polls that found the job still waiting for capacity; at
    ``max_queued_polls`` the state is STUCK (the workflow cancels the job and records the failure).
    """
    task = CheckTrainingInput.model_validate(state)
    training = task.training
    batch_job = ctx.batch.job_state(training.batch_job_id)
    if batch_job is None:
        return training.updated(state="FAILED", reason="the training job disappeared from AWS Batch")
    status = batch_job.status
    record = ctx.jobs.get(task.tenant_id, task.job_id)
    if status in _RUNNING_STATES:
        queued = (training.queued_polls or 0) + 1 if status in _QUEUED_STATES else 0
        if max_queued_polls is not None and queued >= max_queued_polls:
            return training.updated(
                state="STUCK",
                queued_polls=queued,
                reason=f"the training job waited in {status} for {queued} polls without GPU capacity "
                "(check the GPU instance quota and the compute environments); it was cancelled",
            )
        progress = record.progress or 0
        return training.updated(state="RUNNING", progress=progress, queued_polls=queued)
    if status == "SUCCEEDED" and record.status == "completed":
        return training.updated(state="SUCCEEDED", progress=100)
    reason = record.error or batch_job.status_reason or "the training container failed"
    if status == "SUCCEEDED":
        reason = "the training container exited without completing the job record"
    return training.updated(state="FAILED", reason=str(reason))


def cancel_training(ctx: PipelineContext, state: CancelTrainingInput | State) -> StepError:
    """Cancel a job that never got capacity (queued or started meanwhile); returns the error
    RecordFailure records."""
    training = CancelTrainingInput.model_validate(state).training
    reason = str(training.reason)  # check_training's STUCK answer says why
    ctx.batch.cancel(training.batch_job_id, reason)
    return StepError(error="TrainingStuck", cause=reason)


def evaluate_candidate(
    ctx: PipelineContext, state: EvaluateCandidateInput | State, *, now: datetime
) -> Evaluation:
    """Follow the training job's gate: it measured the candidate, the active model and popularity on one
    holdout in the same run (the manifest's ``gate`` section); here only a changed active pointer can
    still overrule it (the job judged against a model that no longer serves)."""
    task = EvaluateCandidateInput.model_validate(state)
    tenant_id, version = task.tenant_id, task.dataset.version
    manifest_key = layout.manifest_key(tenant_id, version)
    try:
        manifest = Manifest.model_validate_json(ctx.artifacts.get_bytes(manifest_key))
    except NotFoundError as exc:
        raise TrainingFailedError(f"the candidate {version} has no manifest") from exc
    gate = manifest.gate
    if not isinstance(gate, dict) or not isinstance(gate.get("promote"), bool):
        raise TrainingFailedError(
            f"the candidate {version}'s manifest has no gate decision (trained by an older job image?)"
        )
    candidate = float(manifest.metrics["ndcg_10"])
    judged = gate.get("active")
    judged_version = judged.get("version") if isinstance(judged, dict) else None
    active = ctx.registry.active(tenant_id)
    current = active.version if active is not None else None
    promote, reason = bool(gate["promote"]), str(gate.get("reason") or "")
    if current != judged_version:
        promote = False
        reason = (
            f"the active model changed while the job ran (judged against {judged_version or 'none'}, "
            f"now {current or 'none'}): not promoted; train again to judge against {current or 'none'}"
        )
    ctx.registry.put_version(
        tenant_id,
        ModelVersion(
            version=version,
            status="candidate",
            model_type=manifest.model_type or task.model_type,
            metrics=manifest.metrics,
            baseline_metrics=manifest.baseline_metrics,
            gate=_gate_summary(gate),
            manifest_key=manifest_key,
            job_id=task.job_id,
            created_at=manifest.created_at or to_iso(now),
            decision=reason,
        ),
    )
    return Evaluation(
        promote=promote,
        reason=reason,
        candidate_ndcg_10=candidate,
        active_version=current,
        active_revision=active.revision if active else None,
        manifest_key=manifest_key,
    )


def _gate_summary(gate: dict[str, Any]) -> GateSummary:
    """The gate's NDCG@10 of each contender (same holdout) for the registry record."""
    metric = str(gate.get("metric", "ndcg_10"))

    def value(part: Any) -> float | None:
        metrics = part.get("metrics") if isinstance(part, dict) else None
        return float(metrics[metric]) if isinstance(metrics, dict) and metric in metrics else None

    found = gate.get("active")
    active: dict[str, Any] = found if isinstance(found, dict) else {}
    return GateSummary(
        metric=metric,
        candidate=value(gate.get("candidate")),
        active=value(active),
        active_version=active.get("version"),
        popularity=value(gate.get("popularity")),
        promote=bool(gate.get("promote")),
    )


def promote_model(ctx: PipelineContext, state: DecisionInput | State, *, now: datetime) -> Promotion:
    """Switch the active pointer to the candidate (one conditional write) and close the job."""
    task = DecisionInput.model_validate(state)
    tenant_id, job_id = task.tenant_id, task.job_id
    evaluation, version = task.evaluation, task.dataset.version
    expected = None
    if evaluation.active_version:
        expected = ActivePointer(evaluation.active_version, "", int(evaluation.active_revision or 0))
    activate_version(ctx.registry, tenant_id, version, expected=expected, now=now, reason=evaluation.reason)
    _record_decision(ctx, tenant_id, version, promoted=True, reason=evaluation.reason, now=now)
    ctx.jobs.update(
        tenant_id,
        job_id,
        TrainingJobFields(deployed=True, decision=evaluation.reason, finished_at=to_iso(now)),
    )
    ctx.jobs.release_lock(tenant_id, job_id)
    return Promotion(version=version, deployed=True)


def activate_version(
    registry: ModelRegistry,
    tenant_id: str,
    version: str,
    *,
    expected: ActivePointer | None,
    now: datetime,
    reason: str,
) -> None:
    """Make ``version`` the active one (promotion, rollback or roll-forward) and retire the previous."""
    record = registry.get_version(tenant_id, version)
    current = registry.active(tenant_id) if expected is None else expected
    if record.manifest_key is None:
        raise NotFoundError(f"model version '{version}' has no manifest to serve")
    registry.switch_active(tenant_id, version, record.manifest_key, expected=current, now=now)
    if current is not None and current.version != version:
        retired = registry.get_version(tenant_id, current.version).changed(status="retired")
        registry.put_version(tenant_id, retired)
    registry.put_version(
        tenant_id, record.changed(status="active", activated_at=to_iso(now), decision=reason)
    )


def reject_candidate(ctx: PipelineContext, state: DecisionInput | State, *, now: datetime) -> Promotion:
    """Keep the active model; record why the candidate lost."""
    task = DecisionInput.model_validate(state)
    tenant_id, job_id = task.tenant_id, task.job_id
    reason, version = task.evaluation.reason, task.dataset.version
    record = ctx.registry.get_version(tenant_id, version)
    ctx.registry.put_version(tenant_id, record.changed(status="rejected", decision=reason))
    _record_decision(ctx, tenant_id, version, promoted=False, reason=reason, now=now)
    ctx.jobs.update(
        tenant_id, job_id, TrainingJobFields(deployed=False, decision=reason, finished_at=to_iso(now))
    )
    ctx.jobs.release_lock(tenant_id, job_id)
    return Promotion(version=version, deployed=False)


def record_failure(
    ctx: PipelineContext, state: RecordFailureInput | State, *, now: datetime
) -> FailureRecord:
    """Mark the job failed with a readable message; serving keeps whatever it had."""
    task = RecordFailureInput.model_validate(state)
    tenant_id, job_id = task.tenant_id, task.job_id
    message = failure_message(task.error)
    ctx.jobs.update(
        tenant_id,
        job_id,
        TrainingJobFields(status="failed", error=message, deployed=False, finished_at=to_iso(now)),
    )
    ctx.jobs.release_lock(tenant_id, job_id)
    return FailureRecord(status="failed", error=message)


def failure_message(error: StepError | State) -> str:
    """A person-readable message from a Step Functions error object (``Error`` + ``Cause``)."""
    parsed_error = StepError.model_validate(error)
    name, cause = str(parsed_error.error), parsed_error.cause
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except json.JSONDecodeError:
            parsed = cause
        cause = parsed
    if isinstance(cause, dict):
        cause = cause.get("errorMessage") or cause.get("message") or json.dumps(cause)
    return f"{name}: {cause}" if cause else name


def _record_decision(
    ctx: PipelineContext, tenant_id: str, version: str, *, promoted: bool, reason: str, now: datetime
) -> None:
    """``decision.json`` beside the (immutable) manifest: why the version was promoted or rejected."""
    ctx.artifacts.put_json(
        layout.decision_key(tenant_id, version),
        {"version": version, "promoted": promoted, "reason": reason, "decided_at": to_iso(now)},
    )
