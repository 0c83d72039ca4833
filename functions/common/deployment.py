"""The Lambda functions of the platform: names, real handler strings, layers and sizes.

The CDK app creates one function per entry; the local stack's in-process runner invokes the same
handler strings, and the state machine's ``${...}`` placeholders name the pipeline entries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

Layer = Literal["data", "serving"]  # data: pyarrow + numpy; serving: faiss + onnxruntime + numpy


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function."""

    name: str
    handler: str
    layer: Layer
    memory_mb: int = 1024
    timeout_s: int = 30
    asl_placeholder: str | None = None  # the ${...} it fills in the training workflow's ASL
    ephemeral_mb: int = 512  # /tmp (Lambda's default and least)
    # SnapStart: invoked through an alias of a published version, each new container restored from a
    # snapshot of the initialised one (Python 3.12+; see functions/serving/snapshot.py for its hooks).
    # AWS offers it only with /tmp at 512 MB (and no EFS).
    snap_start: bool = False


API = FunctionSpec("api", "functions.api.app.handler", "data", memory_mb=1024, timeout_s=29)
SERVING = FunctionSpec(
    "serving", "functions.serving.app.handler", "serving", memory_mb=2048, timeout_s=29, snap_start=True
)


@dataclass(frozen=True)
class ServingSize:
    """How the ``serving`` function is provisioned, by the largest tenant it must hold (docs/deploy.md).

    A loaded version lives in files under /tmp that serving memory-maps (``functions/serving/loader.py``):
    ``ephemeral_mb`` holds them, ``model_budget_mb`` bounds what one container keeps loaded (beyond it the
    least recently used tenants go), and ``memory_mb`` is what their touched pages, the interpreter and
    the in-memory parts need. ``provisioned`` containers are kept initialised (0: on demand only).
    """

    memory_mb: int
    ephemeral_mb: int
    model_budget_mb: int
    provisioned: int

    @property
    def snap_start(self) -> bool:
        """SnapStart where AWS allows it (/tmp at 512 MB): small tenants' containers are restored from a
        snapshot instead of importing; the larger sizes keep ``provisioned`` containers initialised."""
        return self.ephemeral_mb <= 512


#: By the largest tenant: small up to ~200k users / 100k items (≈ 190 MB of /tmp per version), medium
#: ~1M / 300k, large 2M / 1M (the footprint per user and item is measured in docs/benchmarks.md, issue 18).
SERVING_SIZES: Final[dict[str, ServingSize]] = {
    "small": ServingSize(memory_mb=2048, ephemeral_mb=512, model_budget_mb=384, provisioned=0),
    "medium": ServingSize(memory_mb=4096, ephemeral_mb=4096, model_budget_mb=3072, provisioned=2),
    "large": ServingSize(memory_mb=8192, ephemeral_mb=10240, model_budget_mb=8192, provisioned=4),
}
DEFAULT_SERVING_SIZE: Final = "small"


def serving_spec(size: ServingSize) -> FunctionSpec:
    """The ``serving`` function at one deployment size."""
    return replace(
        SERVING, memory_mb=size.memory_mb, ephemeral_mb=size.ephemeral_mb, snap_start=size.snap_start
    )


INGEST = FunctionSpec(
    "ingest", "functions.ingestion.drop_folder.handle_s3_event", "data", memory_mb=2048, timeout_s=300
)
# The consumer of the impressions queue (an SQS event source): response rows and counter ADDs.
IMPRESSIONS = FunctionSpec(
    "impressions", "functions.analytics.handlers.handle_impressions", "data", memory_mb=512, timeout_s=60
)
# The consumer of the events queue (an SQS event source): real-time events, one object per batch.
COMPACT_EVENTS = FunctionSpec(
    "compact-events",
    "functions.ingestion.handlers.handle_event_batches",
    "data",
    memory_mb=1024,
    timeout_s=120,
)

_STEPS = "functions.training.handlers"
PIPELINE_STEPS: tuple[FunctionSpec, ...] = (
    FunctionSpec("open-job", f"{_STEPS}.handle_open_job", "data", 512, 60, "OpenJobFunctionArn"),
    FunctionSpec(
        "prepare-dataset", f"{_STEPS}.handle_prepare_dataset", "data", 3008, 600, "PrepareDatasetFunctionArn"
    ),
    FunctionSpec(
        "submit-training", f"{_STEPS}.handle_submit_training", "data", 512, 60, "SubmitTrainingFunctionArn"
    ),
    FunctionSpec(
        "check-training", f"{_STEPS}.handle_check_training", "data", 512, 60, "CheckTrainingFunctionArn"
    ),
    FunctionSpec(
        "evaluate-candidate",
        f"{_STEPS}.handle_evaluate_candidate",
        "data",
        512,
        60,
        "EvaluateCandidateFunctionArn",
    ),
    FunctionSpec(
        "promote-model", f"{_STEPS}.handle_promote_model", "data", 512, 60, "PromoteModelFunctionArn"
    ),
    FunctionSpec(
        "reject-candidate", f"{_STEPS}.handle_reject_candidate", "data", 512, 60, "RejectCandidateFunctionArn"
    ),
    FunctionSpec(
        "record-failure", f"{_STEPS}.handle_record_failure", "data", 512, 60, "RecordFailureFunctionArn"
    ),
    FunctionSpec(
        "cancel-training", f"{_STEPS}.handle_cancel_training", "data", 512, 60, "CancelTrainingFunctionArn"
    ),
)

# Not a workflow step: the hourly sweep of tenants' retraining schedules (an EventBridge rule invokes it).
RECONCILE_SCHEDULES = FunctionSpec(
    "reconcile-schedules", f"{_STEPS}.handle_reconcile_schedules", "data", memory_mb=512, timeout_s=300
)

FUNCTIONS: tuple[FunctionSpec, ...] = (
    API,
    SERVING,
    INGEST,
    IMPRESSIONS,
    COMPACT_EVENTS,
    *PIPELINE_STEPS,
    RECONCILE_SCHEDULES,
)

TRAINING_WORKFLOW_ASL = "functions/training/training_workflow.asl.json"
