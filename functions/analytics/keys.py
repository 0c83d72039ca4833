"""The analytics table's key layout (table ``analytics``: partition ``tenant_id``, sort ``counter_key``).

Every row belongs to one tenant through its partition key; the sort keys below are the only ones
written. Item ids, test ids and variant ids never contain ``#`` (``ID_PATTERN`` and the A/B request
models forbid it), so a key splits back unambiguously.

======================================  =============================================================
sort key                                row
======================================  =============================================================
``day#{YYYY-MM-DD}#{shard}``            one of ``DAY_SHARDS`` rows (``00``..) whose sum is the tenant's
                                        totals of one day: ``responses``, ``impressions``, ``clicks``,
                                        ``conversions``, ``revenue``; and, while an A/B test runs, the
                                        same per variant in attributes named
                                        ``ab#{test_id}#{variant}#{counter}`` (plus ``revenue_sq``).
                                        Rows written before sharding (``day#{YYYY-MM-DD}``) are summed
                                        in too
``item#{YYYY-MM-DD}#{item_id}``         one item's ``impressions``, ``clicks``, ``conversions``,
                                        ``revenue`` on one day
``rec#{batch_id}``                      the responses one serving container returned to a tenant in
                                        one flush window: ``entries`` (a JSON string) maps each
                                        response's number to its ``d`` (day), ``i`` (items), ``v``
                                        (variant), ``t`` (test id); ``expires_at`` (read by
                                        attribution, written once)
``msg#{delivery_id}#{n}``               marker: part ``n`` of a handed-off message of impressions
                                        was applied (``functions.analytics.deliveries``; put only if
                                        absent, in the same transaction as the part's writes);
                                        ``expires_at`` after SQS's longest retention
======================================  =============================================================

Every writer adds to a day's totals, so one day row would take every write of the tenant (and every
consumer transaction would contend on it): a writer adds to the shard its work hashes to
(``day_shard``: a serving flush's batch id, an event's item), and readers sum the shards.

Counters only ever change through ``ADD`` (atomic, commutative), so concurrent writers never lose
an update. Counter rows stay small (well under 1 KB), which matters: an UpdateItem costs write units
by the size of the whole item, not of the attributes it touches. Response rows are written once
(PutItem) and hold a window's responses together, capped well under DynamoDB's 400 KB item limit: a
busy container writes one row a second instead of one per response. A recommendation id names its
row and entry, ``rec_{batch_id}_{n}``, so attribution finds it with one keyed read.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

DAY_PREFIX: Final = "day#"
ITEM_PREFIX: Final = "item#"
RECOMMENDATION_PREFIX: Final = "rec#"
DELIVERY_PREFIX: Final = "msg#"
VARIANT_PREFIX: Final = "ab#"
#: Sorts after every character an id may contain (``[A-Za-z0-9_.:@/-]``): closes a key range.
RANGE_END: Final = "~"
#: Rows a day's totals are spread over (see the module docstring).
DAY_SHARDS: Final = 16
_RECOMMENDATION_ID: Final = re.compile(r"rec_([0-9a-f]{16})_(\d{1,6})")

Counter = Literal["responses", "impressions", "clicks", "conversions", "revenue", "revenue_sq"]


def day_of(moment: datetime) -> str:
    """The UTC day of a moment, as the keys spell it."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def day_key(day: str, shard: int) -> str:
    """One of the rows of one day's totals (``shard`` in ``range(DAY_SHARDS)``)."""
    return f"{DAY_PREFIX}{day}#{shard % DAY_SHARDS:02d}"


def day_shard(token: str) -> int:
    """The day-row shard of a piece of work (stable across processes: a retry writes the same row)."""
    return zlib.crc32(token.encode()) % DAY_SHARDS


def day_of_key(key: str) -> str:
    """The day of a day row's sort key, sharded or written before sharding."""
    return key[len(DAY_PREFIX) :].split("#", 1)[0]


def item_key(day: str, item_id: str) -> str:
    """The row of one item's counters on one day."""
    return f"{ITEM_PREFIX}{day}#{item_id}"


def recommendation_id(batch_id: str, number: int) -> str:
    """The id of response ``number`` of a response row: what serving returns and shops echo back."""
    return f"rec_{batch_id}_{number}"


def parse_recommendation_id(value: str) -> tuple[str, str] | None:
    """``(row key, entry)`` of a recommendation id, or None for an id serving never issued."""
    match = _RECOMMENDATION_ID.fullmatch(value)
    if match is None:
        return None
    return f"{RECOMMENDATION_PREFIX}{match.group(1)}", match.group(2)


def delivery_marker(delivery_id: str, part: int) -> str:
    """The marker row of part ``part`` of a handed-off message of impressions."""
    return f"{DELIVERY_PREFIX}{delivery_id}#{part}"


def variant_attribute(test_id: str, variant: str, counter: Counter) -> str:
    """The attribute of a day row that counts ``counter`` for one variant of one test."""
    return f"{VARIANT_PREFIX}{test_id}#{variant}#{counter}"


def parse_variant_attribute(name: str) -> tuple[str, str, str] | None:
    """``(test_id, variant, counter)`` of a variant attribute, or None for any other attribute."""
    if not name.startswith(VARIANT_PREFIX):
        return None
    parts = name[len(VARIANT_PREFIX) :].split("#")
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def item_of_key(key: str) -> tuple[str, str]:
    """``(day, item_id)`` of an item row's sort key."""
    day, item_id = key[len(ITEM_PREFIX) :].split("#", 1)
    return day, item_id


def day_range(start: str, end: str) -> tuple[str, str]:
    """Inclusive sort-key bounds of the day rows (every shard) from ``start`` to ``end``."""
    return f"{DAY_PREFIX}{start}", f"{DAY_PREFIX}{end}#{RANGE_END}"


def item_range(start: str, end: str) -> tuple[str, str]:
    """Inclusive sort-key bounds of every item row from day ``start`` to day ``end``."""
    return f"{ITEM_PREFIX}{start}#", f"{ITEM_PREFIX}{end}#{RANGE_END}"


def window(today: date, days: int) -> list[str]:
    """The last ``days`` days up to and including ``today``, oldest first."""
    return [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
