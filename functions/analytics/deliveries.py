"""Impressions handed from serving to the ``impressions`` consumer: the message, and its parts.

Serving sends ONE message per invocation (``functions.analytics.impressions``): the responses it
served (response rows, in their stored form) and their counter increments merged by row, per tenant.
The consumer (``functions.analytics.handlers.handle_impressions``) applies a batch of messages, merged
across messages; should SendMessage fail, serving applies its message itself, the same way.

Exactly once. SQS delivers at least once (a redelivery after a visibility timeout, a batch retried
after a partial failure), and a SendMessage that timed out may have been queued all the same. So a
message carries its own id (``delivery_id``, chosen by serving), and each tenant's share is split,
deterministically, into parts of at most ``PART_UNITS`` writes. A part is applied in one DynamoDB
transaction together with its marker row (``keys.delivery_marker``) put only if absent: a part that
was applied before (by the consumer or by serving's fallback) cancels on its marker and is skipped, and
a transaction that fails leaves nothing behind. Counts never double and nothing is half-applied.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.analytics import keys
from functions.analytics.domain import CounterDelta

#: Writes (response rows + counter rows) guarded by one marker. A transaction holds up to 100 actions,
#: so a part and its marker always fit, and parts of several messages can share one transaction.
PART_UNITS = 40
MESSAGE_VERSION: Literal[1] = 1
DeliveryId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class ResponseRow(BaseModel):
    """A response row as stored (``rec#{batch_id}``): the entries' JSON is written as it is."""

    model_config = ConfigDict(frozen=True)

    batch_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    expires_at: int
    entries: Annotated[str, Field(min_length=2)]


class TenantImpressions(BaseModel):
    """One tenant's share of a message: its response rows and counter increments by row key."""

    model_config = ConfigDict(frozen=True)

    rows: list[ResponseRow] = Field(default_factory=list)
    counters: dict[str, dict[str, Decimal]] = Field(default_factory=dict)


class ImpressionMessage(BaseModel):
    """What one serving invocation hands off (the body of one SQS message)."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = MESSAGE_VERSION
    delivery_id: DeliveryId
    tenants: dict[str, TenantImpressions]

    @classmethod
    def new(cls, tenants: Mapping[str, TenantImpressions]) -> ImpressionMessage:
        """A message with a fresh delivery id."""
        return cls(delivery_id=secrets.token_hex(16), tenants=dict(tenants))


def tenant_share(rows: list[ResponseRow], deltas: Mapping[str, CounterDelta]) -> TenantImpressions:
    """A tenant's share from its rows and merged deltas (rows whose counters are all zero dropped)."""
    counters = {
        key: {name: value for name, value in delta.counters.items() if value}
        for key, delta in deltas.items()
        if any(delta.counters.values())
    }
    return TenantImpressions(rows=rows, counters=counters)


@dataclass(frozen=True)
class Part:
    """At most ``PART_UNITS`` writes of one tenant's share, applied at once with one marker."""

    delivery_id: str
    tenant_id: str
    number: int
    rows: tuple[ResponseRow, ...]
    deltas: Mapping[str, CounterDelta]

    @property
    def marker(self) -> str:
        """The sort key of the marker row that says this part was applied."""
        return keys.delivery_marker(self.delivery_id, self.number)


def parts_of(message: ImpressionMessage) -> list[Part]:
    """The message's parts, always the same for the same message (tenants, rows, then sorted rows keys)."""
    parts: list[Part] = []
    for tenant_id in sorted(message.tenants):
        share = message.tenants[tenant_id]
        units: list[ResponseRow | str] = [*share.rows, *sorted(share.counters)]
        for start in range(0, len(units), PART_UNITS):
            chunk = units[start : start + PART_UNITS]
            parts.append(
                Part(
                    delivery_id=message.delivery_id,
                    tenant_id=tenant_id,
                    number=len(parts),
                    rows=tuple(unit for unit in chunk if isinstance(unit, ResponseRow)),
                    deltas={
                        unit: CounterDelta(dict(share.counters[unit]))
                        for unit in chunk
                        if isinstance(unit, str)
                    },
                )
            )
    return parts
