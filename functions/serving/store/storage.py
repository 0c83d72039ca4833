"""Data access of the serving function: S3 objects, the registry's ACTIVE pointer, users' recent events.

Small readers over boto3; no pyarrow here (the serving layer has none), so the
shared ``functions.ingestion.store.data_store`` is not used.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from contract.s3 import NO_SUCH_BUCKET, NOT_FOUND_CODES
from functions.common.dynamo import from_iso, unavailable_on_failure
from functions.common.errors import NotFoundError, ServiceUnavailableError
from functions.common.in_flight import InFlight
from functions.ingestion.store.recent_activity import (
    ERASED_SORT_KEY,
    PACK_ATTRIBUTE,
    activity_key,
    slot_of,
    slot_versions,
)
from functions.serving.domain import UserEvent, UserFeed
from functions.training.store.model_registry import ActivePointer, read_active_pointer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3 import S3Client

_MISSING_CODES = NOT_FOUND_CODES | {NO_SUCH_BUCKET}
_NOT_MODIFIED_CODES = frozenset({"304", "NotModified"})
#: Read size of a streamed download: large enough that hashing and writing dominate, small enough that the
#: allocator hands the buffers back (8 MiB chunks stayed in its per-thread arenas: ≈ 30 MB measured).
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class ObjectReader:
    """Reads whole objects from one bucket."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def get_bytes(self, key: str) -> bytes:
        """The object's content; ``NotFoundError`` if absent, ``ServiceUnavailableError`` on failure."""
        try:
            with unavailable_on_failure("the object store"):
                response = self._s3.get_object(Bucket=self.bucket, Key=key)
                return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise NotFoundError(f"s3://{self.bucket}/{key} does not exist") from exc
            raise ServiceUnavailableError("the object store is unavailable, please retry") from exc

    def download(self, key: str, destination: Path) -> str:
        """Stream the object into ``destination`` (never whole in memory); its sha256 (hex), computed on
        the way. ``NotFoundError`` if absent, ``ServiceUnavailableError`` on failure."""
        digest = hashlib.sha256()
        try:
            with unavailable_on_failure("the object store"):
                response = self._s3.get_object(Bucket=self.bucket, Key=key)
                with destination.open("wb") as out:
                    for chunk in response["Body"].iter_chunks(DOWNLOAD_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise NotFoundError(f"s3://{self.bucket}/{key} does not exist") from exc
            raise ServiceUnavailableError("the object store is unavailable, please retry") from exc
        return digest.hexdigest()

    def get_if_changed(self, key: str, etag: str | None) -> tuple[bytes, str] | None:
        """The object and its ETag, or None when its ETag is still ``etag`` (one conditional GET, which
        S3 answers 304 without a body); ``NotFoundError`` if absent."""
        try:
            with unavailable_on_failure("the object store"):
                if etag is None:
                    response = self._s3.get_object(Bucket=self.bucket, Key=key)
                else:
                    response = self._s3.get_object(Bucket=self.bucket, Key=key, IfNoneMatch=etag)
                return response["Body"].read(), response["ETag"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _NOT_MODIFIED_CODES:
                return None
            if code in _MISSING_CODES:
                raise NotFoundError(f"s3://{self.bucket}/{key} does not exist") from exc
            raise ServiceUnavailableError("the object store is unavailable, please retry") from exc

    def get_json(self, key: str) -> Any:
        """The object parsed as JSON (``ValueError`` if it is not JSON)."""
        return json.loads(self.get_bytes(key))


class RegistryReader:
    """Reads a tenant's ACTIVE pointer from the model registry."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def active(self, tenant_id: str) -> ActivePointer | None:
        """The live version, or None when the tenant has no active model."""
        return read_active_pointer(self._table, tenant_id)


#: A tenant is busy in a container when it sent BUSY_REQUESTS requests within BUSY_WINDOW_S: far more
#: than a shopper clicking and asking again, and robust to a pause of the process (a rate, not a gap).
BUSY_REQUESTS = 10
BUSY_WINDOW_S = 0.5


class RecentEventsReader:
    """A user's newest real-time events, re-read only when the user's activity counter moved.

    ``functions.ingestion.store.recent_activity`` explains the counters. Per container this keeps each
    tenant's counters and the feeds it read (``cache_entries`` users, each at most
    ``max_age_seconds`` old, a bound should a writer's counter update have failed). A user whose feed
    is not kept here costs one read, of the feed alone: that read is as fresh as the store, and the
    feed is kept under the counters read before it. For a user whose feed is kept, the counters are
    read:

    - by every request of a quiet tenant, before it answers: a client that sends an event and then
      asks again sees it in its very next answer;
    - for a busy tenant (``BUSY_REQUESTS`` within ``BUSY_WINDOW_S`` here), once older than
      ``poll_seconds``, by the request that finds them so (a time check per request, no background
      thread: a Lambda container is frozen between invocations), so one request per window waits
      for one read and events reach answers within ``poll_seconds`` plus that read.

    While a read is in flight (several requests of one container under uvicorn), other requests
    answer with the counters they have instead of starting reads of their own: a slow store never
    meets a growing herd of reads.
    ``poll_seconds = 0`` reads the counters on every request of a kept user.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        poll_seconds: float = 0.0,
        cache_entries: int = 10_000,
        max_age_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._poll_seconds = poll_seconds
        self._cache_entries = cache_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self._versions: dict[str, tuple[tuple[int, ...], float]] = {}
        self._feeds: OrderedDict[tuple[str, str, int], _Feed] = OrderedDict()
        self._polling = InFlight()
        self._recent_requests: dict[str, deque[float]] = {}  # per tenant, the last BUSY_REQUESTS
        self._poll_lock = threading.Lock()
        self._feeds_lock = threading.Lock()

    def newest(self, tenant_id: str, user_id: str, limit: int) -> list[UserEvent]:
        """Up to ``limit`` events of the user, newest first (the sort key starts with the timestamp)."""
        return self.feed(tenant_id, user_id, limit).events

    def feed(self, tenant_id: str, user_id: str, limit: int) -> UserFeed:
        """The user's newest events, and whether the user was erased (the marker heads the feed)."""
        key = (tenant_id, user_id, limit)
        with self._feeds_lock:
            kept = key in self._feeds
        known = self._versions.get(tenant_id)
        if not kept and known is not None:
            return self._first_read(tenant_id, user_id, limit, known[0])
        versions = self._tenant_versions(tenant_id)
        version = versions[slot_of(user_id)] if versions is not None else None
        now = self._clock()
        if version is not None:
            with self._feeds_lock:
                feed = self._feeds.get(key)
                if feed is not None and feed.version == version and now - feed.read_at < self._max_age:
                    self._feeds.move_to_end(key)
                    return feed.feed
        fetched = self._query(tenant_id, user_id, limit)
        if version is not None:
            self._keep(key, _Feed(version, now, fetched))
        return fetched

    def _first_read(self, tenant_id: str, user_id: str, limit: int, versions: tuple[int, ...]) -> UserFeed:
        """A user this container keeps no feed of: the feed read alone, no counter read first.

        The read itself is as fresh as the store, so the counters add nothing to this answer; the
        feed is kept under the counters read earlier (``versions``, taken before this read), so a
        write since then moves the user's counter past them and the next request reads it again.
        """
        now = self._clock()
        fetched = self._query(tenant_id, user_id, limit)
        self._note_request(tenant_id, now)  # after the read: a refused one leaves no trace
        self._keep((tenant_id, user_id, limit), _Feed(versions[slot_of(user_id)], now, fetched))
        return fetched

    def _keep(self, key: tuple[str, str, int], feed: _Feed) -> None:
        if self._cache_entries <= 0:
            return
        with self._feeds_lock:
            self._feeds[key] = feed
            self._feeds.move_to_end(key)
            while len(self._feeds) > self._cache_entries:
                self._feeds.popitem(last=False)

    def _note_request(self, tenant_id: str, now: float) -> None:
        """Count the request towards the tenant's rate (``BUSY_REQUESTS`` within ``BUSY_WINDOW_S``)."""
        self._recent_requests.setdefault(tenant_id, deque(maxlen=BUSY_REQUESTS)).append(now)

    def _tenant_versions(self, tenant_id: str) -> tuple[int, ...] | None:
        """The tenant's slot counters, fresh enough to answer with; None if they cannot be read."""
        now = self._clock()
        known = self._versions.get(tenant_id)
        recent = self._recent_requests.get(tenant_id)
        busy = (
            self._poll_seconds > 0
            and recent is not None
            and len(recent) == BUSY_REQUESTS
            and now - recent[0] < BUSY_WINDOW_S
        )
        if known is None:
            versions = self._poll(tenant_id)
        elif busy and now - known[1] < self._poll_seconds:
            versions = known[0]
        elif not self._polling.claim(tenant_id):
            versions = known[0]  # a read is in flight: never two reads, never a queue behind one
        else:
            # Quiet: read before answering, every time; busy: once per window, by this request.
            versions = self._poll_claimed(tenant_id)
        # Recorded last: a read refused on the event loop (WouldBlockError) must leave no trace.
        self._note_request(tenant_id, now)
        return versions

    def _poll_claimed(self, tenant_id: str) -> tuple[int, ...] | None:
        """``_poll`` by the request (or background task) that claimed the tenant's read."""
        try:
            return self._poll(tenant_id)
        finally:
            self._polling.release(tenant_id)

    def _poll(self, tenant_id: str) -> tuple[int, ...] | None:
        """Read the counters now (the time taken BEFORE the read, so a feed is never newer than it)."""
        taken_at = self._clock()
        try:
            with unavailable_on_failure("the event store"):
                item = self._client.get_item(
                    TableName=self._table_name, Key=activity_key(tenant_id), ConsistentRead=True
                ).get("Item")
        except ServiceUnavailableError:
            return None  # read the feed itself, as if nothing were known
        versions = slot_versions(item)
        with self._poll_lock:
            known = self._versions.get(tenant_id)
            if known is None or known[1] <= taken_at:  # a slower, older read never wins
                self._versions[tenant_id] = (versions, taken_at)
        return versions

    def _query(self, tenant_id: str, user_id: str, limit: int) -> UserFeed:
        with unavailable_on_failure("the event store"):
            response = self._client.query(
                TableName=self._table_name,
                KeyConditionExpression="tenant_user = :key",
                ExpressionAttributeValues={":key": {"S": f"{tenant_id}#{user_id}"}},
                ProjectionExpression="event_key, item_id, interaction_type, #ts, #events",
                ExpressionAttributeNames={"#ts": "timestamp", "#events": PACK_ATTRIBUTE},
                ScanIndexForward=False,
                Limit=limit + 1,  # the erasure marker, if any, comes first
            )
        events: list[UserEvent] = []
        erased = False
        for item in response.get("Items", []):
            if item["event_key"]["S"] == ERASED_SORT_KEY:
                erased = True
                continue
            try:
                events.extend(_unpack(item))
            except (KeyError, ValueError, TypeError):
                continue  # a malformed event is skipped, not fatal: it only personalises
        # Entries are newest first by their newest event; a bulk upload's pack holds older ones too.
        events.sort(key=lambda event: event.timestamp, reverse=True)
        return UserFeed(events[:limit], erased)


def _unpack(item: dict[str, Any]) -> list[UserEvent]:
    """A feed entry's events: one real-time event, or a bulk upload's pack (``PACK_ATTRIBUTE``)."""
    key = item["event_key"]["S"]
    packed = item.get(PACK_ATTRIBUTE)
    if packed is None:
        return [
            UserEvent(
                item_id=item["item_id"]["S"],
                interaction_type=item["interaction_type"]["S"],
                timestamp=from_iso(item["timestamp"]["S"]),
                event_key=key,
            )
        ]
    return [
        UserEvent(
            item_id=str(item_id),
            interaction_type=str(kind),
            timestamp=from_iso(str(stamp)),
            event_key=f"{key}:{n}",
        )
        for n, (item_id, kind, stamp) in enumerate(json.loads(packed["S"]))
    ]


@dataclass(frozen=True)
class _Feed:
    version: int
    read_at: float
    feed: UserFeed
