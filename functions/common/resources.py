"""The one definition of embedrec's storage resources.

Both the CDK app (``cdk/constructs/storage.py``) and the embedded local stack
(``embedrec_local.provision``) build tables, buckets and queues from these specs, so the
two cannot drift. Physical names are never hard-coded in function code: each
function receives them through the environment variable named by ``env_var``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

KeyType = Literal["S", "N"]


@dataclass(frozen=True)
class Key:
    """One key attribute of a table or index."""

    name: str
    type: KeyType = "S"


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (projection ALL keeps readers simple at our sizes)."""

    name: str
    partition_key: Key
    sort_key: Key | None = None


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table: logical name, keys, indexes, TTL and the env var carrying its physical name."""

    logical_name: str
    partition_key: Key
    sort_key: Key | None = None
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    env_var: str = field(default="")

    def attribute_definitions(self) -> list[Key]:
        """Every attribute used as a key by the table or one of its indexes, without repeats."""
        keys: dict[str, Key] = {}
        for key in (self.partition_key, self.sort_key):
            if key is not None:
                keys[key.name] = key
        for index in self.indexes:
            for key in (index.partition_key, index.sort_key):
                if key is not None:
                    keys[key.name] = key
        return list(keys.values())


@dataclass(frozen=True)
class BucketSpec:
    """An S3 bucket: logical name and the env var carrying its physical name."""

    logical_name: str
    env_var: str


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue with its dead-letter queue: logical name, redelivery and the env var of its URL.

    ``visibility_timeout_s`` follows AWS's rule for a Lambda event source (at least 6x the consumer's
    timeout); after ``max_receives`` failed deliveries a message is parked in the dead-letter queue,
    which keeps it ``dlq_retention_days`` (an alarm watches it). ``batch_size`` and
    ``batching_window_s``, where set, are its consumer's event source mapping (and the local poller's).
    """

    logical_name: str
    env_var: str
    visibility_timeout_s: int
    max_receives: int
    retention_days: int = 4
    dlq_retention_days: int = 14
    batch_size: int = 10
    batching_window_s: int = 0


TENANTS = TableSpec(
    "tenants",
    Key("tenant_id"),
    indexes=(IndexSpec("by_slug", Key("slug")),),
    env_var="EMBEDREC_TENANTS_TABLE",
)
# Login is by e-mail alone (as in the walkthrough), so the account's e-mail is the key: uniqueness is
# one conditional put. The tenant is an attribute that every token then carries.
ACCOUNTS = TableSpec(
    "accounts",
    Key("email"),
    indexes=(IndexSpec("by_tenant", Key("tenant_id"), Key("account_id")),),
    env_var="EMBEDREC_ACCOUNTS_TABLE",
)
API_KEYS = TableSpec(
    "api_keys",
    Key("tenant_id"),
    Key("key_id"),
    indexes=(IndexSpec("by_hash", Key("key_hash")),),
    env_var="EMBEDREC_API_KEYS_TABLE",
)
UPLOADS = TableSpec(
    "uploads",
    Key("tenant_id"),
    Key("upload_id"),
    env_var="EMBEDREC_UPLOADS_TABLE",
)
# Idempotency markers for client-supplied event ids (one conditional put per event).
EVENT_IDS = TableSpec(
    "event_ids",
    Key("tenant_event"),
    ttl_attribute="expires_at",
    env_var="EMBEDREC_EVENT_IDS_TABLE",
)
RECENT_EVENTS = TableSpec(
    "recent_events",
    Key("tenant_user"),
    Key("event_key"),
    ttl_attribute="expires_at",
    env_var="EMBEDREC_RECENT_EVENTS_TABLE",
)
TRAINING_JOBS = TableSpec(
    "training_jobs",
    Key("tenant_id"),
    Key("job_id"),
    env_var="EMBEDREC_TRAINING_JOBS_TABLE",
)
MODEL_REGISTRY = TableSpec(
    "model_registry",
    Key("tenant_id"),
    Key("version"),
    env_var="EMBEDREC_MODEL_REGISTRY_TABLE",
)
AB_TESTS = TableSpec(
    "ab_tests",
    Key("tenant_id"),
    Key("test_id"),
    env_var="EMBEDREC_AB_TESTS_TABLE",
)
ANALYTICS = TableSpec(
    "analytics",
    Key("tenant_id"),
    Key("counter_key"),
    ttl_attribute="expires_at",  # per-response attribution records expire; counters carry none
    env_var="EMBEDREC_ANALYTICS_TABLE",
)

TABLES: tuple[TableSpec, ...] = (
    TENANTS,
    ACCOUNTS,
    API_KEYS,
    UPLOADS,
    EVENT_IDS,
    RECENT_EVENTS,
    TRAINING_JOBS,
    MODEL_REGISTRY,
    AB_TESTS,
    ANALYTICS,
)

DATA_BUCKET = BucketSpec("data", "EMBEDREC_DATA_BUCKET")
ARTIFACTS_BUCKET = BucketSpec("artifacts", "EMBEDREC_ARTIFACTS_BUCKET")
BUCKETS: tuple[BucketSpec, ...] = (DATA_BUCKET, ARTIFACTS_BUCKET)

# Served responses' impressions, one message per serving invocation, for the ``impressions`` consumer
# (functions/analytics/handlers.py; its timeout is 60 s, so 6 x 60 s of visibility).
IMPRESSIONS_QUEUE = QueueSpec(
    "impressions",
    "EMBEDREC_IMPRESSIONS_QUEUE_URL",
    visibility_timeout_s=360,
    max_receives=5,
    # One consumer invocation applies up to 100 serving invocations' impressions, or a second of them:
    # the counter rows of a batch are merged, so a busy tenant costs about one transaction a second.
    batch_size=100,
    batching_window_s=1,
)
# Real-time JSON events, one message per request, for the ``compact-events`` consumer
# (functions/ingestion/handlers.py; its timeout is 120 s, so 6 x 120 s of visibility).
# A batch is what the compactor writes as one Parquet object per tenant: up to 1,000 requests or 20 s of
# them (a busy tenant: ~4 objects a minute, whatever the request rate; Lambda caps a batch at 6 MB).
EVENTS_QUEUE = QueueSpec(
    "events",
    "EMBEDREC_EVENTS_QUEUE_URL",
    visibility_timeout_s=720,
    max_receives=5,
    batch_size=1000,
    batching_window_s=20,
)
QUEUES: tuple[QueueSpec, ...] = (IMPRESSIONS_QUEUE, EVENTS_QUEUE)

# S3 layout (docs/artifacts.md). Every builder takes the tenant first: there is no unscoped path.
DROP_FOLDER_PREFIX = "incoming/"


def raw_key(tenant_id: str, kind: Literal["items", "interactions"], day: str, upload_id: str) -> str:
    """Where one accepted upload's rows live: ``raw/{tenant}/{kind}/{YYYY-MM-DD}/{upload}.parquet``."""
    return f"raw/{tenant_id}/{kind}/{day}/{upload_id}.parquet"


def raw_prefix(tenant_id: str, kind: Literal["items", "interactions"]) -> str:
    """The prefix holding every accepted upload of one kind for a tenant."""
    return f"raw/{tenant_id}/{kind}/"


def catalog_key(tenant_id: str) -> str:
    """The tenant's current catalogue: every item once, the latest upload winning (upsert by item_id)."""
    return f"catalog/{tenant_id}/items.parquet"


def item_counts_key(tenant_id: str) -> str:
    """Weighted interaction counts per item, kept by ingestion (feeds popularity before any model):
    the uploads folded in so far; the newer ones are deltas (:func:`item_count_delta_key`)."""
    return f"catalog/{tenant_id}/item_counts.parquet"


def item_count_deltas_prefix(tenant_id: str) -> str:
    """Where each bulk upload puts its own item counts until they are folded into the base."""
    return f"catalog/{tenant_id}/item_counts/"


def item_count_delta_key(tenant_id: str, upload_id: str) -> str:
    """One upload's weighted counts per item (rewritten as a whole if the upload is retried)."""
    return f"{item_count_deltas_prefix(tenant_id)}{upload_id}.parquet"


def drop_key(tenant_id: str, kind: Literal["items", "interactions"], filename: str) -> str:
    """A file in the S3 drop folder, picked up by the ingest function."""
    return f"{DROP_FOLDER_PREFIX}{tenant_id}/{kind}/{filename}"


def report_key(tenant_id: str, upload_id: str) -> str:
    """The JSON validation report of one upload."""
    return f"reports/{tenant_id}/{upload_id}.json"
