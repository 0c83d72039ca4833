"""Event-id claims (idempotent retries) and the per-user recent-events feed for real-time serving."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions.common.dynamo import from_iso, is_condition_failure, to_iso, unavailable_on_failure
from functions.common.errors import ServiceUnavailableError
from functions.ingestion.store.recent_activity import (
    ERASED_SORT_KEY,
    PACK_ATTRIBUTE,
    activity_key,
    bump_expression,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef

_CLAIM_WORKERS = 16
_IN_FLIGHT_CHUNKS = 4 * _CLAIM_WORKERS
_BATCH_WRITE_SIZE = 25
_BATCH_GET_SIZE = 100
#: Items per TransactWriteItems (DynamoDB's limit).
_CLAIM_CHUNK = 100
#: Rounds of a claim transaction: each round settles at least the ids held elsewhere.
_CLAIM_ATTEMPTS = 5
_CONDITION_CODE = "ConditionalCheckFailed"
_CLAIM_BACKOFF_S = 0.05


class EventIdRepository:
    """Claims client event ids so that a retried event is stored once.

    Claims go 100 to a conditional ``TransactWriteItems`` (16 in flight), not one ``PutItem`` each: a
    million-row file is 10,000 requests instead of a million, which is what keeps a large drop-folder
    file inside the ingest function's timeout. An id is claimed when nobody holds it or this same upload
    holds it already (an invocation that died before recording its upload runs again and keeps its rows).
    """

    def __init__(self, client: DynamoDBClient, table_name: str, ttl: timedelta) -> None:
        self._client = client
        self._table_name = table_name
        self._ttl = ttl

    def claim(self, tenant_id: str, event_ids: Sequence[str], upload_id: str, now: datetime) -> set[str]:
        """Claim each id for ``upload_id``; returns those already claimed by an earlier upload."""
        expires_at = str(int((now + self._ttl).timestamp()))
        unique = list(dict.fromkeys(event_ids))  # one transaction may not name an item twice
        chunks = [unique[start : start + _CLAIM_CHUNK] for start in range(0, len(unique), _CLAIM_CHUNK)]
        if len(chunks) <= 1:
            outcomes = [self._claim_chunk(tenant_id, chunk, upload_id, expires_at) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=min(_CLAIM_WORKERS, len(chunks))) as pool:
                outcomes = list(
                    pool.map(lambda chunk: self._claim_chunk(tenant_id, chunk, upload_id, expires_at), chunks)
                )
        return set().union(*outcomes) if outcomes else set()

    def release(self, tenant_id: str, event_ids: Iterable[str], upload_id: str) -> None:
        """Undo this upload's claims (its rows were not stored), so that a retry is accepted."""
        with ThreadPoolExecutor(max_workers=_CLAIM_WORKERS) as pool:
            list(pool.map(lambda event_id: self._release_one(tenant_id, event_id, upload_id), event_ids))

    def _claim_chunk(self, tenant_id: str, event_ids: list[str], upload_id: str, expires_at: str) -> set[str]:
        """Claim up to 100 ids in one transaction; returns the ids another upload holds.

        A cancelled transaction writes nothing and says, per item, why: the ids held elsewhere are
        taken out and the rest are claimed again (conflicts with a concurrent transaction likewise).
        """
        held: set[str] = set()
        pending = event_ids
        for _attempt in range(_CLAIM_ATTEMPTS):
            if not pending:
                return held
            try:
                with unavailable_on_failure("the event store"):
                    self._client.transact_write_items(
                        TransactItems=[
                            {"Put": self._claim_put(tenant_id, event_id, upload_id, expires_at)}
                            for event_id in pending
                        ]
                    )
                return held
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                reasons = exc.response.get("CancellationReasons", [])
                if len(reasons) != len(pending):
                    raise ServiceUnavailableError("the event store is unavailable, please retry") from exc
                codes = [reason.get("Code", "None") for reason in reasons]
                held.update(e for e, code in zip(pending, codes, strict=True) if code == _CONDITION_CODE)
                if _CONDITION_CODE not in codes:
                    time.sleep(_CLAIM_BACKOFF_S * (_attempt + 1))  # a conflict or throttling: back off
                pending = [e for e, code in zip(pending, codes, strict=True) if code != _CONDITION_CODE]
        if pending:
            raise ServiceUnavailableError("the event store is busy, please retry")
        return held

    def _claim_put(self, tenant_id: str, event_id: str, upload_id: str, expires_at: str) -> PutTypeDef:
        return {
            "TableName": self._table_name,
            "Item": {
                "tenant_event": {"S": f"{tenant_id}#{event_id}"},
                "upload_id": {"S": upload_id},
                "expires_at": {"N": expires_at},
            },
            "ConditionExpression": "attribute_not_exists(tenant_event) OR upload_id = :upload",
            "ExpressionAttributeValues": {":upload": {"S": upload_id}},
        }

    def _release_one(self, tenant_id: str, event_id: str, upload_id: str) -> None:
        try:
            with unavailable_on_failure("the event store"):
                self._client.delete_item(
                    TableName=self._table_name,
                    Key={"tenant_event": {"S": f"{tenant_id}#{event_id}"}},
                    ConditionExpression="upload_id = :upload",
                    ExpressionAttributeValues={":upload": {"S": upload_id}},
                )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


@dataclass(frozen=True)
class RecentEvent:
    """One real-time interaction, as serving reads it."""

    user_id: str
    item_id: str
    interaction_type: str
    timestamp: datetime
    event_key: str


@dataclass(frozen=True)
class EventPack:
    """One user's events of a bulk upload, already encoded as ``PACK_ATTRIBUTE`` holds them."""

    user_id: str
    newest: str  # ISO time of the newest event: the entry's key starts with it
    events_json: str


class RecentEventsRepository:
    """The per-user feed of interactions from every source (newest events personalise serving)."""

    def __init__(self, client: DynamoDBClient, table_name: str, ttl: timedelta) -> None:
        self._client = client
        self._table_name = table_name
        self._ttl = ttl

    def put_many(self, tenant_id: str, events: Sequence[RecentEvent], now: datetime) -> None:
        """Append events to their users' feeds (batched; unprocessed items are retried)."""
        expires_at = int((now + self._ttl).timestamp())
        requests = (
            {
                "PutRequest": {
                    "Item": {
                        "tenant_user": {"S": f"{tenant_id}#{event.user_id}"},
                        "event_key": {"S": event.event_key},
                        "item_id": {"S": event.item_id},
                        "interaction_type": {"S": event.interaction_type},
                        "timestamp": {"S": to_iso(event.timestamp)},
                        "expires_at": {"N": str(expires_at)},
                    }
                }
            }
            for event in events
        )
        self._write_batches(requests)
        self._bump(tenant_id, [event.user_id for event in events])

    def put_packs(self, tenant_id: str, packs: Sequence[EventPack], pack_id: str, now: datetime) -> None:
        """One feed entry per user holding that user's events of a bulk upload (``PACK_ATTRIBUTE``)."""
        expires_at = str(int((now + self._ttl).timestamp()))
        requests = (
            {
                "PutRequest": {
                    "Item": {
                        "tenant_user": {"S": f"{tenant_id}#{pack.user_id}"},
                        "event_key": {"S": f"{pack.newest}#{pack_id}"},
                        PACK_ATTRIBUTE: {"S": pack.events_json},
                        "expires_at": {"N": expires_at},
                    }
                }
            }
            for pack in packs
        )
        self._write_batches(requests)
        self._bump(tenant_id, [pack.user_id for pack in packs])

    def erasures(self, tenant_id: str, user_ids: Iterable[str]) -> dict[str, datetime]:
        """When each of ``user_ids`` that was ever erased was erased last (their feeds' markers;
        BatchGetItem, 100 keys a call)."""
        wanted = sorted(set(user_ids))
        found: dict[str, datetime] = {}
        for start in range(0, len(wanted), _BATCH_GET_SIZE):
            keys = [
                {"tenant_user": {"S": f"{tenant_id}#{user_id}"}, "event_key": {"S": ERASED_SORT_KEY}}
                for user_id in wanted[start : start + _BATCH_GET_SIZE]
            ]
            request: Any = {
                self._table_name: {"Keys": keys, "ProjectionExpression": "tenant_user, erased_at"}
            }
            for _attempt in range(_CLAIM_ATTEMPTS):
                with unavailable_on_failure("the event store"):
                    response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table_name, []):
                    user_id = item["tenant_user"]["S"].split("#", 1)[1]
                    found[user_id] = from_iso(item["erased_at"]["S"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(_CLAIM_BACKOFF_S)
            else:
                raise ServiceUnavailableError("the event store is throttling, please retry")
        return found

    def delete_user(self, tenant_id: str, user_id: str, *, erased_at: datetime) -> int:
        """Delete the user's whole feed and leave the erasure marker in it; returns how many events
        were removed. With the marker, serving never again uses what any model version learned of the
        user (``recent_activity.ERASED_SORT_KEY``); a later event of the same id is a new shopper's."""
        keys: list[dict[str, Any]] = []
        removed = 0
        kwargs: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "tenant_user = :u",
            "ExpressionAttributeValues": {":u": {"S": f"{tenant_id}#{user_id}"}},
            "ProjectionExpression": "tenant_user, event_key, #events",
            "ExpressionAttributeNames": {"#events": PACK_ATTRIBUTE},
        }
        with unavailable_on_failure("the event store"):
            while True:
                page = self._client.query(**kwargs)
                for item in page.get("Items", []):
                    packed = item.pop(PACK_ATTRIBUTE, None)
                    if item["event_key"]["S"] == ERASED_SORT_KEY:
                        continue  # an earlier erasure's marker stays; it is rewritten below
                    removed += len(json.loads(packed["S"])) if packed else 1
                    keys.append(item)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        marker = {
            "tenant_user": {"S": f"{tenant_id}#{user_id}"},
            "event_key": {"S": ERASED_SORT_KEY},
            "erased_at": {"S": to_iso(erased_at)},
        }
        requests = [{"DeleteRequest": {"Key": key}} for key in keys]
        self._write_batches([*requests, {"PutRequest": {"Item": marker}}])
        self._bump(tenant_id, [user_id])
        return removed

    def _bump(self, tenant_id: str, user_ids: Sequence[str]) -> None:
        """Count a change of these users' feeds, after the writes (``recent_activity``'s contract)."""
        if not user_ids:
            return
        expression, values = bump_expression(user_ids)
        with unavailable_on_failure("the event store"):
            self._client.update_item(
                TableName=self._table_name,
                Key=activity_key(tenant_id),
                UpdateExpression=expression,
                ExpressionAttributeValues=values,
            )

    def _write_batches(self, requests: Iterable[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks of 25, several at once, retrying what DynamoDB leaves unprocessed.

        A bulk upload writes thousands of chunks; one after another they would dominate its latency.
        Requests are built as chunks are sent, at most ``_IN_FLIGHT_CHUNKS`` ahead, so a file of a
        million shoppers never holds a million request documents at once. Every chunk is written (or
        has failed) before this returns.
        """
        chunks = _chunked(requests, _BATCH_WRITE_SIZE)
        first = next(chunks, None)
        if first is None:
            return
        second = next(chunks, None)
        if second is None:
            self._write_chunk(first)
            return
        with ThreadPoolExecutor(max_workers=_CLAIM_WORKERS) as pool:
            pending = {pool.submit(self._write_chunk, first), pool.submit(self._write_chunk, second)}
            for chunk in chunks:
                if len(pending) >= _IN_FLIGHT_CHUNKS:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                pending.add(pool.submit(self._write_chunk, chunk))
            for future in pending:
                future.result()

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        pending: Any = {self._table_name: chunk}
        for _attempt in range(5):
            with unavailable_on_failure("the event store"):
                pending = self._client.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})
            if not pending:
                return
        raise ServiceUnavailableError("the event store is throttling, please retry")


def _chunked(requests: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(requests)
    while chunk := list(islice(iterator, size)):
        yield chunk
