"""The response cache: TTL, LRU bound, and per-user invalidation through the fingerprint."""

from __future__ import annotations

from functions.serving.cache import ResponseCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_returned_while_fresh_and_fingerprint_unchanged() -> None:
    clock = Clock()
    cache: ResponseCache[str] = ResponseCache(10, 60, clock)
    cache.put(("t", "u", 1), "evt1", "answer")

    assert cache.get(("t", "u", 1), "evt1") == "answer"
    clock.now = 59.9
    assert cache.get(("t", "u", 1), "evt1") == "answer"
    clock.now = 60.0
    assert cache.get(("t", "u", 1), "evt1") is None


def test_a_new_event_invalidates_every_entry_of_that_user_only() -> None:
    cache: ResponseCache[str] = ResponseCache(10, 60, Clock())
    cache.put(("t", "alice", "no filter"), "e1", "a1")
    cache.put(("t", "alice", "laptops"), "e1", "a2")
    cache.put(("t", "bob", "no filter"), "b1", "b")

    # Alice clicked: her newest event key is now e2.
    assert cache.get(("t", "alice", "no filter"), "e2") is None
    assert cache.get(("t", "alice", "laptops"), "e2") is None
    assert cache.get(("t", "bob", "no filter"), "b1") == "b"
    assert len(cache) == 1  # stale entries are dropped, not kept


def test_the_least_recently_used_entries_go_beyond_the_bound() -> None:
    cache: ResponseCache[int] = ResponseCache(3, 60, Clock())
    for n in range(3):
        cache.put(n, "", n)
    cache.get(0, "")  # 0 is now the most recently used
    cache.put(3, "", 3)

    assert len(cache) == 3
    assert cache.get(1, "") is None
    assert [cache.get(n, "") for n in (0, 2, 3)] == [0, 2, 3]


def test_a_zero_sized_cache_stores_nothing() -> None:
    cache: ResponseCache[int] = ResponseCache(0, 60, Clock())
    cache.put("k", "", 1)

    assert cache.get("k", "") is None and not cache.enabled
