"""Names and constants of the CDK app, in one place.

Physical names are left to CloudFormation wherever AWS allows it (tables, buckets, functions, queues),
so two stacks can live in one account; only the few names other code must know are fixed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from contract.layout import CHECKPOINTS_FOLDER
from contract.layout import MODELS_PREFIX as MODELS_PREFIX  # the training job writes there, serving reads

ROOT: Final = Path(__file__).resolve().parent.parent

STACK_ID: Final = "Embedrec"
APP_TAG: Final = "embedrec"

# Built by `python -m layers.build` (make layers): one directory per layer (holding python/) and code/.
DEFAULT_ASSETS_DIR: Final = ROOT / "layers" / "build"
CODE_ASSET: Final = "code"
BASE_LAYER: Final = "base"

# Context keys (cdk.json or `-c key=value`); see docs/deploy.md.
CTX_ASSETS_DIR: Final = "embedrec:assetsDir"
CTX_TRAINING_IMAGE_REPOSITORY: Final = "embedrec:trainingImageRepository"
CTX_TRAINING_IMAGE_TAG: Final = "embedrec:trainingImageTag"
CTX_RETAIN_DATA: Final = "embedrec:retainData"
CTX_ALARM_EMAIL: Final = "embedrec:alarmEmail"
CTX_TRAINING_MAX_VCPUS: Final = "embedrec:trainingMaxVcpus"
CTX_TRAINING_WINDOW: Final = "embedrec:trainingWindow"
CTX_TENANTS_BY_PLAN: Final = "embedrec:tenantsByPlan"
# One of functions.common.deployment.SERVING_SIZES (memory, /tmp, model budget, provisioned concurrency).
CTX_SERVING_SIZE: Final = "embedrec:servingSize"

# Powertools (functions/common/observability.py reads these).
METRICS_NAMESPACE: Final = "embedrec"
LOG_LEVEL: Final = "INFO"


def service_name(function_name: str) -> str:
    """``POWERTOOLS_SERVICE_NAME`` of a function: the ``service`` dimension of its metrics."""
    return f"embedrec-{function_name}"


# Training workflow. The api function creates one schedule per tenant in this group at run time.
SCHEDULE_GROUP: Final = "embedrec-training"
ENV_SCHEDULE_GROUP: Final = "EMBEDREC_SCHEDULE_GROUP"
ENV_SCHEDULER_ROLE_ARN: Final = "EMBEDREC_SCHEDULER_ROLE_ARN"
ENV_TRAINING_WINDOW: Final = "EMBEDREC_TRAINING_WINDOW"
# Tenants' schedules are spread over this daily UTC window; the sweep repairs them every hour.
DEFAULT_TRAINING_WINDOW: Final = "01:00-05:00"
RECONCILE_SCHEDULES_EVERY_MINUTES: Final = 60
ENV_STATE_MACHINE_ARN: Final = "EMBEDREC_STATE_MACHINE_ARN"
ENV_TRAINING_JOB_QUEUE: Final = "EMBEDREC_TRAINING_JOB_QUEUE"
ENV_TRAINING_JOB_DEFINITION: Final = "EMBEDREC_TRAINING_JOB_DEFINITION"
ENV_JWT_SECRET_ARN: Final = "EMBEDREC_JWT_SECRET_ARN"
ENV_ADMIN_KEY_ARN: Final = "EMBEDREC_ADMIN_KEY_ARN"
ENV_MODEL_BUDGET_MB: Final = "EMBEDREC_MODEL_BUDGET_MB"  # functions/serving/settings.py

# The training container (training_jobs/Dockerfile; its build context is the repository root).
TRAINING_DOCKERFILE: Final = "training_jobs/Dockerfile"
TRAINING_COMMAND: Final = ("python", "-m", "training_jobs.train")
TRAINING_IMAGE_CONTEXT_EXCLUDES: Final = (
    ".git",
    ".venv",
    "**/__pycache__",
    "**/.mypy_cache",
    "**/.pytest_cache",
    ".ruff_cache",
    "cdk.out",
    "layers/build",
    "node_modules",
    "sample_data",
    "tests",
    "docs",
    "localstack",
    "*.egg-info",
)
# One GPU (g5/g6 xlarge: 4 vCPU, 16 GiB, one A10G/L4); memory leaves room for the ECS agent.
TRAINING_INSTANCE_CLASSES: Final = ("g5", "g6")
TRAINING_VCPUS: Final = 4
TRAINING_MEMORY_MIB: Final = 14_336
TRAINING_GPUS: Final = 1
TRAINING_TIMEOUT_HOURS: Final = 4
TRAINING_DEFAULT_MAX_VCPUS: Final = 16

# S3 prefixes (functions/common/resources.py, contract/layout.py, docs/artifacts.md).
DATASETS_PREFIX: Final = "datasets/"
RAW_PREFIX: Final = "raw/"
CATALOG_PREFIX: Final = "catalog/"
REPORTS_PREFIX: Final = "reports/"
#: The training job's checkpoints: ``datasets/{tenant}/{job}/checkpoints/`` (it writes nothing else there).
CHECKPOINTS_PREFIX: Final = f"{DATASETS_PREFIX}*/*/{CHECKPOINTS_FOLDER}"
INCOMING_EXPIRY_DAYS: Final = 30
DATASETS_EXPIRY_DAYS: Final = 30
NONCURRENT_VERSION_EXPIRY_DAYS: Final = 90

# API. The stage's throttling is sized from functions/identity/plans.py and context embedrec:tenantsByPlan.
DOCS_ROUTES: Final = ("/docs", "/openapi.json")
API_PROXY_ROUTE: Final = "/api/{proxy+}"
# The alias through which the HTTP API invokes a function's published version (SnapStart restores only
# published versions; the alias carries provisioned concurrency).
LIVE_ALIAS: Final = "live"

# Alarms (issue 6; the seed's thresholds).
API_LATENCY_P95_MS: Final = 200
API_ERROR_RATE_PERCENT: Final = 1
