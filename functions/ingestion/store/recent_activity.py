"""The recent-events feed's change counters: how serving knows, without a read per request, who is new.

Next to the per-user feeds, the recent-events table holds one small item per tenant (partition key
``{tenant_id}#`` — a user id is never empty, so no feed has that key) with ``SLOTS`` counters. Every
write to a user's feed (new events, or an erasure) is followed by ``ADD`` on the counter of the user's
slot (a stable hash of the user id). Serving reads the item at most every few milliseconds per
container and re-reads a user's feed only when the user's slot counter moved since it last did: a
warm user of a quiet shop costs no read at all, and one counter read serves every request of that
tenant in the window. Writers bump the counter AFTER the feed write, and readers take the counter
BEFORE reading the feed, so a reader can re-read needlessly but never keep a stale feed.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any, Final

SLOTS: Final = 64
#: How many of a user's newest events serving reads by default, and so how many of each user's rows a
#: bulk upload (CSV, drop folder) writes to the feed: older rows would never be read.
FEED_DEPTH: Final = 20
#: A bulk upload writes ONE feed entry per user (a pack), keyed by the user's newest event in it, with
#: the events as a JSON list of ``[item_id, interaction_type, timestamp]`` in this attribute. A user's
#: newest ``n`` events are always inside the ``n`` entries with the highest keys, so serving reads
#: ``n`` entries and unpacks them.
PACK_ATTRIBUTE: Final = "events"
ACTIVITY_SORT_KEY: Final = "ACTIVITY"
#: The sort key of an erased user's marker in their own feed (no TTL: it outlives every model trained
#: before the erasure). Event keys start with an ISO timestamp, and ``~`` sorts after every digit, so
#: a newest-first query returns the marker first: serving learns of an erasure in the read it already
#: makes for the user's events, at no extra cost.
ERASED_SORT_KEY: Final = "~erased"


def activity_key(tenant_id: str) -> dict[str, Any]:
    """The DynamoDB key of a tenant's activity counters (low-level client form)."""
    return {"tenant_user": {"S": f"{tenant_id}#"}, "event_key": {"S": ACTIVITY_SORT_KEY}}


def slot_of(user_id: str) -> int:
    """The user's counter: a stable hash (the same in every process, unlike ``hash``)."""
    return zlib.crc32(user_id.encode()) % SLOTS


def slot_attribute(slot: int) -> str:
    """The attribute holding one slot's counter."""
    return f"s{slot}"


def bump_expression(user_ids: Iterable[str]) -> tuple[str, dict[str, Any]]:
    """The ``ADD`` update expression and values that count one change for each user's slot."""
    slots = sorted({slot_of(user_id) for user_id in user_ids})
    clause = ", ".join(f"{slot_attribute(slot)} :one" for slot in slots)
    return f"ADD {clause}", {":one": {"N": "1"}}


def slot_versions(item: dict[str, Any] | None) -> tuple[int, ...]:
    """Every slot's counter of a stored activity item (zeros for a tenant without events)."""
    item = item or {}
    return tuple(int(item.get(slot_attribute(slot), {}).get("N", "0")) for slot in range(SLOTS))
