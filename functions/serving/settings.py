"""Settings of the ``serving`` function, validated once at cold start.

Same pattern as ``functions.common.settings``: the storage names come from the env vars of
``functions.common.resources`` (no defaults), everything serving-specific has the ``EMBEDREC_`` prefix.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator

from functions.common.container import per_container
from functions.common.settings import ResourceName, StorageSettings
from functions.ingestion.store.recent_activity import FEED_DEPTH


class ServingSettings(StorageSettings):
    """The ``serving`` function: model loading, ranking, response cache and the JWT check."""

    # Either the secret itself (local stack, tests) or the ARN of a Secrets Manager secret holding it.
    jwt_secret: SecretStr | None = None
    jwt_secret_arn: str | None = None

    # How often (at most) the registry's ACTIVE pointer is re-read per tenant; also the refresh period
    # of the catalogue's popular list for tenants without a model.
    model_refresh_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    # How often (at most) a request re-checks its tenant's current catalogue (one conditional GET,
    # functions/serving/catalog.py): a catalogue change reaches answers within this plus one request.
    catalog_check_seconds: Annotated[float, Field(ge=0, le=60)] = 10.0
    # Tenants whose models stay warm in one container (least recently used are dropped).
    max_tenant_models: Annotated[int, Field(ge=1, le=64)] = 4
    # Loaded versions are files under this folder, memory-mapped (Lambda: /tmp, its ephemeral storage).
    model_dir: Annotated[str, Field(min_length=1)] = "/tmp/embedrec-models"
    # Bytes of loaded versions per container (their files: the most they can keep resident); beyond it
    # the least recently used tenants are dropped, the one just loaded always stays. The CDK app sets it
    # per deployment size (functions/common/deployment.py).
    model_budget_mb: Annotated[int, Field(ge=64, le=10_240)] = 1024

    # Per-container response cache.
    response_cache_ttl_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0
    response_cache_max_entries: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000

    # Real-time personalisation: how many of a user's newest events are read and folded in, and how
    # fast an event's weight halves with age.
    recent_events_limit: Annotated[int, Field(ge=1, le=200)] = FEED_DEPTH
    fold_in_half_life_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    # A user's feed is re-read only when its activity counter moved. The counters are re-read once
    # older than poll (0: on every request): before answering for a quiet tenant, in the background
    # for a busy one; feeds of this many users are kept per container (functions/serving/store/storage.py).
    recent_events_poll_seconds: Annotated[float, Field(ge=0, le=5)] = 0.1
    recent_events_cache_entries: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000

    # FAISS threads per search: single queries gain nothing from OpenMP and concurrent requests
    # lose to its spinning, so one thread unless measured otherwise.
    faiss_threads: Annotated[int, Field(ge=1, le=64)] = 1
    # Per-plan request quotas per container (functions/identity/throttling.py); off only for load benchmarks.
    request_quotas: bool = True
    # In Lambda, hand off each request's impressions after its response, on the after-response extension
    # (functions/common/after_response.py); false: before the response, as without it.
    after_response: bool = True

    # Where each invocation hands off its impressions (functions/analytics/impressions.py).
    impressions_queue_url: ResourceName

    @model_validator(mode="after")
    def _secret_configured(self) -> ServingSettings:
        if self.jwt_secret is None and not self.jwt_secret_arn:
            raise ValueError("set EMBEDREC_JWT_SECRET or EMBEDREC_JWT_SECRET_ARN")
        return self


@per_container
def get_serving_settings() -> ServingSettings:
    """The serving function's settings, read from the environment once per container."""
    return ServingSettings()  # type: ignore[call-arg]  # values come from the environment
