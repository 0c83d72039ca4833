"""The recent-events reader re-reads a user's feed only when the user's activity counter moved."""

from __future__ import annotations

from typing import Any, cast

from functions.ingestion.store.recent_activity import (
    ACTIVITY_SORT_KEY,
    SLOTS,
    bump_expression,
    slot_attribute,
    slot_of,
)
from functions.serving.store import storage
from functions.serving.store.storage import RecentEventsReader

TENANT = "tenant_1"


class FakeDynamo:
    """The two calls the reader makes, with counts, over an in-memory feed and activity item."""

    def __init__(self) -> None:
        self.feeds: dict[str, list[dict[str, Any]]] = {}
        self.counters = [0] * SLOTS
        self.gets = 0
        self.queries = 0
        self.failing_gets = False

    def event(self, user_id: str, key: str) -> None:
        """A writer's order: the feed first, then the user's counter."""
        item = {
            "event_key": {"S": key},
            "item_id": {"S": f"item_{key}"},
            "interaction_type": {"S": "click"},
            "timestamp": {"S": "2025-01-07T12:00:00+00:00"},
        }
        self.feeds.setdefault(f"{TENANT}#{user_id}", []).insert(0, item)
        self.counters[slot_of(user_id)] += 1

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.gets += 1
        if self.failing_gets:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="http://dynamodb")
        assert kwargs["Key"]["event_key"]["S"] == ACTIVITY_SORT_KEY and kwargs["ConsistentRead"]
        attributes = {slot_attribute(s): {"N": str(v)} for s, v in enumerate(self.counters) if v}
        return {"Item": attributes} if attributes else {}

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.queries += 1
        key = kwargs["ExpressionAttributeValues"][":key"]["S"]
        return {"Items": self.feeds.get(key, [])[: kwargs["Limit"]]}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _reader(dynamo: FakeDynamo, clock: Clock, **kwargs: Any) -> RecentEventsReader:
    return RecentEventsReader(cast(Any, dynamo), "events", poll_seconds=0.02, clock=clock, **kwargs)


def _other_slot_user(user_id: str) -> str:
    return next(f"u{n}" for n in range(1000) if slot_of(f"u{n}") != slot_of(user_id))


def test_a_warm_user_costs_no_feed_read_and_a_busy_shop_one_counter_read_per_window() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    dynamo.event("alice", "1")
    reader = _reader(dynamo, clock)

    first = reader.newest(TENANT, "alice", 20)
    for _ in range(50):  # a burst: quiet for its first requests (a read each), then busy
        assert reader.newest(TENANT, "alice", 20) == first
    assert (dynamo.gets, dynamo.queries) == (storage.BUSY_REQUESTS, 1)

    clock.now += 0.05  # the window passed: the counters are read again, the feed is not
    assert reader.newest(TENANT, "alice", 20) == first
    assert (dynamo.gets, dynamo.queries) == (storage.BUSY_REQUESTS + 1, 1)
    assert [e.event_key for e in first] == ["1"]


def test_a_quiet_shop_sees_a_new_event_in_the_very_next_answer() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    bob = _other_slot_user("alice")
    reader = _reader(dynamo, clock)
    reader.newest(TENANT, "alice", 20)
    reader.newest(TENANT, bob, 20)

    dynamo.event("alice", "2")
    clock.now += 0.001
    assert [e.event_key for e in reader.newest(TENANT, "alice", 20)] == ["2"]
    queries = dynamo.queries
    assert reader.newest(TENANT, bob, 20) == [] and dynamo.queries == queries  # bob's slot did not move


def test_a_user_without_a_kept_feed_costs_one_read_and_is_kept_under_the_earlier_counters() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    bob = _other_slot_user("alice")
    reader = _reader(dynamo, clock)
    reader.newest(TENANT, "alice", 20)  # the container's first request reads the counters
    assert (dynamo.gets, dynamo.queries) == (1, 1)

    # Given bob's event written after those counters were read
    dynamo.event(bob, "7")
    clock.now += 1
    # When bob asks for the first time: his feed alone is read, and it holds the event
    assert [e.event_key for e in reader.newest(TENANT, bob, 20)] == ["7"]
    assert (dynamo.gets, dynamo.queries) == (1, 2)
    # Then his feed was kept under the older counters: the next answer re-reads it once, no more
    clock.now += 1
    assert [e.event_key for e in reader.newest(TENANT, bob, 20)] == ["7"]
    assert (dynamo.gets, dynamo.queries) == (2, 3)
    clock.now += 1
    assert [e.event_key for e in reader.newest(TENANT, bob, 20)] == ["7"]
    assert (dynamo.gets, dynamo.queries) == (3, 3)


def test_a_busy_tenant_reads_the_counters_once_per_window_on_the_request_that_finds_them_stale() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    reader = _reader(dynamo, clock)
    for _ in range(storage.BUSY_REQUESTS):  # 10 requests in 0.1 s: a busy shop from now on
        clock.now += 0.01
        reader.newest(TENANT, "alice", 20)
    assert dynamo.gets == storage.BUSY_REQUESTS  # until then, each read before answering
    dynamo.event("alice", "5")

    # Within the window the counters are not read again: the new event is not seen yet
    clock.now += 0.005
    assert reader.newest(TENANT, "alice", 20) == []
    assert dynamo.gets == storage.BUSY_REQUESTS

    # The first request past the window reads them before answering (no thread does it later)
    clock.now += 0.02
    assert [e.event_key for e in reader.newest(TENANT, "alice", 20)] == ["5"]
    assert dynamo.gets == storage.BUSY_REQUESTS + 1
    clock.now += 0.005
    assert [e.event_key for e in reader.newest(TENANT, "alice", 20)] == ["5"]
    assert dynamo.gets == storage.BUSY_REQUESTS + 1


def test_a_quiet_container_reads_the_counters_before_answering() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    reader = _reader(dynamo, clock)
    reader.newest(TENANT, "alice", 20)
    dynamo.event("alice", "4")

    clock.now += 0.3
    assert [e.event_key for e in reader.newest(TENANT, "alice", 20)] == ["4"]


def test_without_a_window_every_request_sees_every_event() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    reader = RecentEventsReader(cast(Any, dynamo), "events", poll_seconds=0, clock=clock)
    assert reader.newest(TENANT, "alice", 20) == []
    dynamo.event("alice", "3")
    assert [e.event_key for e in reader.newest(TENANT, "alice", 20)] == ["3"]


def test_unreadable_counters_fall_back_to_reading_the_feed_every_time() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    dynamo.event("alice", "1")
    dynamo.failing_gets = True
    reader = _reader(dynamo, clock)

    for _ in range(3):
        assert [e.event_key for e in reader.newest(TENANT, "alice", 20)] == ["1"]
    assert dynamo.queries == 3


def test_a_kept_feed_is_re_read_after_its_maximum_age_and_the_cache_is_bounded() -> None:
    dynamo, clock = FakeDynamo(), Clock()
    reader = _reader(dynamo, clock, cache_entries=2, max_age_seconds=10)
    reader.newest(TENANT, "alice", 20)
    clock.now += 11  # e.g. a writer whose counter update failed: the feed is re-read anyway
    reader.newest(TENANT, "alice", 20)
    assert dynamo.queries == 2

    for user in ("u1", "u2", "u3"):
        reader.newest(TENANT, user, 20)
    queries = dynamo.queries
    reader.newest(TENANT, "alice", 20)  # evicted by the three newer users
    assert dynamo.queries == queries + 1


def test_the_bump_expression_counts_each_slot_once() -> None:
    expression, values = bump_expression(["alice", "alice", _other_slot_user("alice")])
    assert expression.count(":one") == 2 and expression.startswith("ADD ")
    assert values == {":one": {"N": "1"}}
