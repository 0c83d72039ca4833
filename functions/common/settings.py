"""Settings of each function, validated once at cold start.

Nothing below an entry point reads ``os.environ``: entry points call the cached ``get_*_settings()``
and pass the result (or what is built from it) down. Table and bucket names have no defaults: a
function deployed without them fails at cold start with a clear message, not at its first query.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.common.container import per_container

ResourceName = Annotated[str, Field(min_length=3, max_length=255)]
# Daily UTC window over which tenants' retraining schedules are spread (functions/training/schedule.py).
TrainingWindowText = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")]


class StorageSettings(BaseSettings):
    """Physical names of the resources in ``functions.common.resources``."""

    model_config = SettingsConfigDict(env_prefix="EMBEDREC_", extra="ignore", frozen=True)

    tenants_table: ResourceName
    accounts_table: ResourceName
    api_keys_table: ResourceName
    uploads_table: ResourceName
    event_ids_table: ResourceName
    recent_events_table: ResourceName
    training_jobs_table: ResourceName
    model_registry_table: ResourceName
    ab_tests_table: ResourceName
    analytics_table: ResourceName
    data_bucket: ResourceName
    artifacts_bucket: ResourceName
    # How long retried event ids are remembered, and how long real-time events feed serving.
    event_id_ttl_days: Annotated[int, Field(ge=1, le=365)] = 30
    recent_events_ttl_days: Annotated[int, Field(ge=1, le=365)] = 30


#: Lambda's synchronous invocation payload quota (request and response): 6 MB.
LAMBDA_SYNC_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
#: Room kept in that quota for the rest of the HTTP API event (headers, request context, JSON).
HTTP_EVENT_ENVELOPE_BYTES: Final = 64 * 1024
#: The largest request body the API accepts: HTTP APIs base64-encode every non-text body (multipart
#: uploads included: 4 bytes per 3), so (6 MiB - 64 KiB) * 3/4 = 4,669,440 bytes. Larger files go
#: through ``POST /api/v1/uploads`` (a presigned S3 URL, up to 5 GB, validated by the drop folder).
MAX_UPLOAD_BODY_BYTES: Final = (LAMBDA_SYNC_PAYLOAD_BYTES - HTTP_EVENT_ENVELOPE_BYTES) * 3 // 4


class ApiSettings(StorageSettings):
    """The ``api`` function: auth, tenancy and ingestion."""

    # Either the secret itself (local stack, tests) or the ARN of a Secrets Manager secret holding it.
    jwt_secret: SecretStr | None = None
    jwt_secret_arn: str | None = None
    admin_key: SecretStr | None = None
    admin_key_arn: str | None = None
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=86_400)] = 3600
    # What a synchronous Lambda invocation can carry (MAX_UPLOAD_BODY_BYTES); the app refuses more with
    # 413 and the presigned-URL route before Lambda would refuse the event.
    max_body_bytes: Annotated[int, Field(ge=1024)] = MAX_UPLOAD_BODY_BYTES
    upload_url_ttl_seconds: Annotated[int, Field(ge=60, le=43_200)] = 900
    # Per-plan request quotas per container (functions/identity/throttling.py); off only for load benchmarks.
    request_quotas: bool = True
    # The training workflow; absent where training is not deployed (the trigger then answers 503).
    state_machine_arn: str | None = None
    training_poll_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    # Per-tenant retraining schedules (EventBridge Scheduler); absent where scheduling is not deployed.
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    training_window: TrainingWindowText = "01:00-05:00"
    # Where real-time JSON events are handed off for compaction (functions/ingestion/compaction.py).
    events_queue_url: ResourceName

    @model_validator(mode="after")
    def _secrets_configured(self) -> ApiSettings:
        if self.jwt_secret is None and not self.jwt_secret_arn:
            raise ValueError("set EMBEDREC_JWT_SECRET or EMBEDREC_JWT_SECRET_ARN")
        if self.admin_key is None and not self.admin_key_arn:
            raise ValueError("set EMBEDREC_ADMIN_KEY or EMBEDREC_ADMIN_KEY_ARN")
        return self


class IngestSettings(StorageSettings):
    """The ``ingest`` function (S3 drop folder)."""

    state_machine_arn: str | None = None
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    training_window: TrainingWindowText = "01:00-05:00"


class ScheduleSettings(StorageSettings):
    """The ``reconcile-schedules`` function (the hourly sweep of tenants' retraining schedules)."""

    state_machine_arn: ResourceName
    schedule_group: ResourceName
    scheduler_role_arn: ResourceName
    training_window: TrainingWindowText = "01:00-05:00"


class PipelineSettings(StorageSettings):
    """The training workflow's task functions."""

    training_job_queue: ResourceName
    training_job_definition: ResourceName
    default_window_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # Each user's latest interactions (this share, at least one) form the time-based validation split.
    validation_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.2
    default_quality_floor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    training_poll_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    # How long a Batch job may wait for capacity (SUBMITTED/PENDING/RUNNABLE) before the workflow
    # cancels it and records the failure (no GPU quota, a disabled queue); counted in polls.
    training_max_queued_seconds: Annotated[int, Field(ge=1, le=86_400)] = 7200


@per_container
def get_api_settings() -> ApiSettings:
    """The api function's settings, read from the environment once per container."""
    return ApiSettings()  # type: ignore[call-arg]  # values come from the environment


@per_container
def get_ingest_settings() -> IngestSettings:
    """The ingest function's settings, read from the environment once per container."""
    return IngestSettings()  # type: ignore[call-arg]


@per_container
def get_schedule_settings() -> ScheduleSettings:
    """The schedule sweep's settings, read from the environment once per container."""
    return ScheduleSettings()  # type: ignore[call-arg]


@per_container
def get_pipeline_settings() -> PipelineSettings:
    """The pipeline functions' settings, read from the environment once per container."""
    return PipelineSettings()  # type: ignore[call-arg]
