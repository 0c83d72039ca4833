"""The running-test pointer is cached per container and re-read by one request when it expires."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

from functions.analytics.store.ab_tests import AbTestRepository

NOW = datetime(2025, 1, 7, 12, tzinfo=UTC)


class SlowTable:
    """A table without a running test whose reads can call back in, as a concurrent request would."""

    def __init__(self) -> None:
        self.reads = 0
        self.during_read: Any = None

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        if self.during_read is not None:
            callback, self.during_read = self.during_read, None
            callback()
        return {}


def test_an_expired_pointer_is_re_read_once_while_other_requests_use_the_cached_answer() -> None:
    table = SlowTable()
    tests = AbTestRepository(cast(Any, table), cache_ttl_s=0.05)
    assert tests.running("t1", NOW) is None and table.reads == 1
    assert tests.running("t1", NOW) is None and table.reads == 1  # cached

    time.sleep(0.06)
    concurrent: list[object] = []
    table.during_read = lambda: concurrent.append(tests.running("t1", NOW))
    assert tests.running("t1", NOW) is None

    assert concurrent == [None] and table.reads == 2  # the concurrent request did not read again
