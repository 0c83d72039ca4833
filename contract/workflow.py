"""Each training-workflow task's input and output (``functions/training/training_workflow.asl.json``).

A task receives the whole execution state and reads only its part, so input models ignore other keys;
its output is stored at the task's ``ResultPath`` (noted on each model) and read by later tasks and
Choice states. Dumped with ``exclude_unset``, outputs keep exactly the keys their step set.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TaskInput(BaseModel):
    """The execution state as one task reads it (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TaskOutput(BaseModel):
    """What a task returns."""

    model_config = ConfigDict(extra="forbid")

    def as_json(self) -> dict[str, Any]:
        """The JSON the state machine stores (only the keys the step set)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class JobInput(TaskInput):
    """The job a task works on."""

    tenant_id: str
    job_id: str


class OpenJobInput(TaskInput):
    """OpenJob: a scheduled execution's input (the tenant's retraining schedule sends it)."""

    tenant_id: str
    trigger: Literal["schedule"] = "schedule"


class ExecutionInput(TaskOutput):
    """The execution's job: the API's execution input, or OpenJob's output (``ResultPath: $``)."""

    tenant_id: str
    job_id: str
    model_type: str
    config: dict[str, Any]
    poll_seconds: int


class PrepareDatasetInput(JobInput):
    """PrepareDataset."""

    model_type: str
    config: dict[str, Any] | None = None


class DataSpan(BaseModel):
    """The oldest and newest interaction of the tenant's data."""

    first: str
    last: str


class PreparedDataset(TaskOutput):
    """PrepareDataset's result (``$.dataset``; also kept in the job record)."""

    uri: str
    version: str
    interactions: int
    validation: int
    users: int
    items: int
    window_start: str
    window_end: str
    #: ``start``, ``end``, ``days``, ``anchor``: the manifest's ``data_window``.
    window: dict[str, Any]
    data_span: DataSpan
    prepared_at: str


class DatasetVersion(TaskInput):
    """The candidate's version named by ``$.dataset``."""

    version: str


class DatasetLocation(DatasetVersion):
    """Where ``$.dataset`` put the snapshot."""

    uri: str


class SubmitTrainingInput(JobInput):
    """SubmitTraining."""

    model_type: str
    config: dict[str, Any] | None = None
    dataset: DatasetLocation


BatchState = Literal["SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "STUCK"]


class TrainingState(TaskOutput):
    """The Batch job (``$.training``): SubmitTraining's result, carried on and updated by CheckTraining."""

    model_config = ConfigDict(extra="allow")

    batch_job_id: str
    state: BatchState
    active_version: str | None = None
    active_revision: int | None = None
    progress: int | None = None
    #: Consecutive polls that found the job still waiting for capacity.
    queued_polls: int | None = None
    #: Why the job failed or was cancelled.
    reason: str | None = None

    def updated(self, **changes: Any) -> TrainingState:
        """This state with ``changes`` (every other key kept as it was)."""
        return TrainingState.model_validate({**self.as_json(), **changes})


class CheckTrainingInput(JobInput):
    """CheckTraining."""

    training: TrainingState
    poll_seconds: int | None = None


class CancelTrainingInput(TaskInput):
    """CancelTraining (after a STUCK check, whose ``reason`` says why)."""

    training: TrainingState


class StepError(TaskOutput):
    """A Step Functions error object (``$.error``): a Catch's, TrainingFailed's or CancelTraining's."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    error: str = Field("Error", alias="Error")
    cause: Any = Field("", alias="Cause")


class EvaluateCandidateInput(JobInput):
    """EvaluateCandidate."""

    model_type: str
    dataset: DatasetVersion


class Evaluation(TaskOutput):
    """EvaluateCandidate's verdict (``$.evaluation``), read by the ``Promote?`` choice."""

    promote: bool
    reason: str
    candidate_ndcg_10: float
    active_version: str | None
    active_revision: int | None
    manifest_key: str


class DecisionInput(JobInput):
    """PromoteModel and RejectCandidate."""

    dataset: DatasetVersion
    evaluation: Evaluation


class Promotion(TaskOutput):
    """PromoteModel's or RejectCandidate's result (``$.promotion``)."""

    version: str
    deployed: bool


class RecordFailureInput(JobInput):
    """RecordFailure."""

    error: StepError = Field(default_factory=StepError)


class FailureRecord(TaskOutput):
    """RecordFailure's result (``$.failure``)."""

    status: Literal["failed"]
    error: str
