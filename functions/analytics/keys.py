"""The analytics table's key layout (table ``analytics``: partition ``tenant_id``, sort ``counter_key``).

Every row belongs to one tenant through its partition key; the sort keys below are the only ones
written. Item ids, test ids and variant ids never contain ``#`` (``ID_PATTERN`` and the A/B request
models forbid it), so a key splits back unambiguously.

======================================  =============================================================
sort key                                row
======================================  =============================================================
``day#{YYYY-MM-DD}``                    the tenant's totals of one day: ``responses``, ``impressions``,
                                        ``clicks``, ``conversions``, ``revenue``; and, while an A/B
                                        test runs, the same per variant in attributes named
                                        ``ab#{test_id}#{variant}#{counter}`` (plus ``revenue_sq``)
``item#{YYYY-MM-DD}#{item_id}``         one item's ``impressions``, ``clicks``, ``conversions``,
                                        ``revenue`` on one day
``rec#{recommendation_id}``             one served response: ``day``, ``items``, ``variant``,
                                        ``test_id``, ``expires_at`` (read by attribution)
======================================  =============================================================

Counters only ever change through ``ADD`` (atomic, commutative), so concurrent writers never lose
an update. Rows stay small (well under 1 KB), which matters: an UpdateItem costs write units by the
size of the whole item, not of the attributes it touches.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

DAY_PREFIX: Final = "day#"
ITEM_PREFIX: Final = "item#"
RECOMMENDATION_PREFIX: Final = "rec#"
VARIANT_PREFIX: Final = "ab#"
#: Sorts after every character an id may contain (``[A-Za-z0-9_.:@/-]``): closes a key range.
RANGE_END: Final = "~"

Counter = Literal["responses", "impressions", "clicks", "conversions", "revenue", "revenue_sq"]


def day_of(moment: datetime) -> str:
    """The UTC day of a moment, as the keys spell it."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def day_key(day: str) -> str:
    """The row of one day's totals."""
    return f"{DAY_PREFIX}{day}"


def item_key(day: str, item_id: str) -> str:
    """The row of one item's counters on one day."""
    return f"{ITEM_PREFIX}{day}#{item_id}"


def recommendation_key(recommendation_id: str) -> str:
    """The row remembering one served response, for attribution."""
    return f"{RECOMMENDATION_PREFIX}{recommendation_id}"


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
    """Inclusive sort-key bounds of the day rows from ``start`` to ``end``."""
    return day_key(start), day_key(end)


def item_range(start: str, end: str) -> tuple[str, str]:
    """Inclusive sort-key bounds of every item row from day ``start`` to day ``end``."""
    return f"{ITEM_PREFIX}{start}#", f"{ITEM_PREFIX}{end}#{RANGE_END}"


def window(today: date, days: int) -> list[str]:
    """The last ``days`` days up to and including ``today``, oldest first."""
    return [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
