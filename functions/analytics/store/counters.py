"""Analytics counters and recommendation records in DynamoDB (layout: ``functions.analytics.keys``).

Uses the low-level client (thread-safe, unlike boto3 resources) so that the independent UpdateItem
calls of one response or one upload run in parallel on a small, bounded pool that lives as long as
the container. There is no batch form of UpdateItem, and transactions would make two responses that
recommend the same item conflict, so parallel single-item ``ADD``s are the cheapest atomic option.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.analytics import keys
from functions.analytics.domain import CounterDelta, RecommendationRecord
from functions.common.dynamo import unavailable_on_failure
from functions.common.errors import ServiceUnavailableError
from functions.common.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_WORKERS = 8
_BATCH_GET_SIZE = 100
_BATCH_GET_ATTEMPTS = 5
_WHAT = "the analytics store"


@dataclass(frozen=True)
class Row:
    """One counter row as read: its sort key and its numeric attributes."""

    key: str
    counters: dict[str, float]


class AnalyticsCounters:
    """Atomic counters, served-response rows and range reads of one tenant's analytics rows."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, workers: int = _WORKERS) -> None:
        self._client = client
        self._table_name = table_name
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analytics")

    # --- writes ---------------------------------------------------------------------------------

    def apply(self, tenant_id: str, deltas: Mapping[str, CounterDelta]) -> int:
        """Add every delta (``ADD``, one UpdateItem per row, in parallel); returns the writes made.

        All or nothing, as far as DynamoDB allows: if one row fails, the rows already changed are
        changed back (best effort) before ``ServiceUnavailableError`` is raised, so a retried upload
        is not counted twice.
        """
        return self._write(tenant_id, deltas)

    def _write(self, tenant_id: str, deltas: Mapping[str, CounterDelta]) -> int:
        work = {key: delta for key, delta in deltas.items() if any(delta.counters.values())}
        futures = {key: self._pool.submit(self._add, tenant_id, key, delta) for key, delta in work.items()}
        failure: ServiceUnavailableError | None = None
        applied: list[str] = []
        for key, future in futures.items():
            try:
                future.result()
                applied.append(key)
            except ServiceUnavailableError as exc:
                failure = exc
        if failure is not None:
            self._undo(tenant_id, {key: work[key] for key in applied})
            raise failure
        return len(work)

    def _undo(self, tenant_id: str, applied: Mapping[str, CounterDelta]) -> None:
        for key, delta in applied.items():
            try:
                self._add(tenant_id, key, delta.negated())
            except ServiceUnavailableError:
                logger.warning(
                    "analytics counter not rolled back", extra={"tenant_id": tenant_id, "key": key}
                )

    def _add(self, tenant_id: str, key: str, delta: CounterDelta) -> None:
        with unavailable_on_failure(_WHAT):
            self._client.update_item(
                TableName=self._table_name,
                Key={"tenant_id": {"S": tenant_id}, "counter_key": {"S": key}},
                **add_expression(delta),
            )

    def record_responses(
        self,
        tenant_id: str,
        rows: Sequence[tuple[str, Sequence[RecommendationRecord]]],
        deltas: Mapping[str, CounterDelta],
    ) -> None:
        """Served responses' rows and their counter increments, all sent at once and waited for.

        The counters are all or nothing (``apply``); a response row that fails raises as well.
        """
        puts = [
            self._pool.submit(self.put_responses, tenant_id, batch_id, records) for batch_id, records in rows
        ]
        try:
            if deltas:
                self.apply(tenant_id, deltas)
        finally:
            failures = [future.exception() for future in puts]
        for failure in failures:
            if failure is not None:
                raise failure

    def put_responses(self, tenant_id: str, batch_id: str, records: Sequence[RecommendationRecord]) -> None:
        """Remember a window's served responses as one row (``rec#{batch_id}``, written once)."""
        if not records:
            return
        expires_at, entries = encode_response_row(batch_id, records)
        with unavailable_on_failure(_WHAT):
            self._client.put_item(
                TableName=self._table_name, Item=response_row_item(tenant_id, batch_id, expires_at, entries)
            )

    # --- reads ----------------------------------------------------------------------------------

    def recommendations(
        self, tenant_id: str, recommendation_ids: Iterable[str], now: datetime
    ) -> dict[str, RecommendationRecord]:
        """The tenant's unexpired records of these responses (unknown or expired ids are absent)."""
        wanted: dict[str, dict[str, str]] = {}  # row key -> entry -> recommendation id
        for recommendation_id in set(recommendation_ids):
            parsed = keys.parse_recommendation_id(recommendation_id)
            if parsed is not None:
                wanted.setdefault(parsed[0], {})[parsed[1]] = recommendation_id
        found: dict[str, RecommendationRecord] = {}
        horizon = int(now.timestamp())
        row_keys = sorted(wanted)
        for start in range(0, len(row_keys), _BATCH_GET_SIZE):
            for item in self._batch_get(tenant_id, row_keys[start : start + _BATCH_GET_SIZE]):
                if int(item.get("expires_at", {}).get("N", "0")) < horizon:
                    continue
                entries = _entries(item)
                for entry, recommendation_id in wanted[item["counter_key"]["S"]].items():
                    if entry in entries:
                        found[recommendation_id] = _record(recommendation_id, entries[entry], item)
        return found

    def _batch_get(self, tenant_id: str, row_keys: list[str]) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            self._table_name: {
                "Keys": [{"tenant_id": {"S": tenant_id}, "counter_key": {"S": key}} for key in row_keys]
            }
        }
        for _attempt in range(_BATCH_GET_ATTEMPTS):
            with unavailable_on_failure(_WHAT):
                response = self._client.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(self._table_name, [])
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return
        raise ServiceUnavailableError(f"{_WHAT} is throttling, please retry")

    def rows(self, tenant_id: str, low: str, high: str) -> Iterator[Row]:
        """Every row whose sort key lies in ``[low, high]``, with its numeric attributes."""
        kwargs: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "tenant_id = :tenant AND counter_key BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":tenant": {"S": tenant_id},
                ":low": {"S": low},
                ":high": {"S": high},
            },
        }
        while True:
            with unavailable_on_failure(_WHAT):
                page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                yield Row(
                    key=item["counter_key"]["S"],
                    counters={name: float(value["N"]) for name, value in item.items() if "N" in value},
                )
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def close(self) -> None:
        """Stop the worker threads (tests and the local stack; Lambda just freezes them)."""
        self._pool.shutdown(wait=False)


def encode_response_row(batch_id: str, records: Sequence[RecommendationRecord]) -> tuple[int, str]:
    """``(expires_at, entries)`` of a response row: the entries as one JSON string.

    One JSON string, not a nested map: a row holds many responses, and botocore serialises nested
    attribute values in Python (the serving container's CPU).
    """
    entries: dict[str, Any] = {}
    for record in records:
        parsed = keys.parse_recommendation_id(record.recommendation_id)
        if parsed is None or parsed[0] != keys.RECOMMENDATION_PREFIX + batch_id:
            raise ValueError(f"{record.recommendation_id!r} is not a response of batch {batch_id}")
        entries[parsed[1]] = _entry(record)
    return max(record.expires_at for record in records), json.dumps(entries, separators=(",", ":"))


def response_row_item(tenant_id: str, batch_id: str, expires_at: int, entries: str) -> dict[str, Any]:
    """The stored item of a response row (``rec#{batch_id}``)."""
    return {
        "tenant_id": {"S": tenant_id},
        "counter_key": {"S": keys.RECOMMENDATION_PREFIX + batch_id},
        "expires_at": {"N": str(expires_at)},
        "entries": {"S": entries},
    }


def add_expression(delta: CounterDelta) -> dict[str, Any]:
    """The ``ADD`` of a delta: UpdateExpression and its attribute names and values."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses: list[str] = []
    for index, (attribute, value) in enumerate(sorted(delta.counters.items())):
        if not value:
            continue
        names[f"#a{index}"] = attribute
        values[f":v{index}"] = {"N": _number(value)}
        clauses.append(f"#a{index} :v{index}")
    return {
        "UpdateExpression": "ADD " + ", ".join(clauses),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _number(value: Decimal | int) -> str:
    """A DynamoDB number: exact, without an exponent DynamoDB would have to normalise."""
    text = format(Decimal(value).normalize(), "f")
    return text if text not in ("-0", "") else "0"


def _entries(row: Mapping[str, Any]) -> dict[str, Any]:
    """A response row's entries by number; a row that cannot be parsed has none (attribution skips it)."""
    try:
        entries = json.loads(row.get("entries", {}).get("S", "{}"))
    except ValueError:
        return {}
    return entries if isinstance(entries, dict) else {}


def _record(recommendation_id: str, entry: Mapping[str, Any], row: Mapping[str, Any]) -> RecommendationRecord:
    return RecommendationRecord(
        recommendation_id=recommendation_id,
        day=str(entry["d"]),
        items=frozenset(str(item) for item in entry.get("i", [])),
        variant=str(entry["v"]) if "v" in entry else None,
        test_id=str(entry["t"]) if "t" in entry else None,
        expires_at=int(row.get("expires_at", {}).get("N", "0")),
    )


def _entry(record: RecommendationRecord) -> dict[str, Any]:
    """The stored form of one served response in its row (its items and A/B arm, for attribution)."""
    entry: dict[str, Any] = {"d": record.day}
    if record.items:
        entry["i"] = sorted(record.items)
    if record.variant is not None and record.test_id is not None:
        entry["v"] = record.variant
        entry["t"] = record.test_id
    return entry
