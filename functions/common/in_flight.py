"""Which keys one caller is re-reading right now, so that concurrent callers keep what they have.

Every warm cache of a container meets the same moment: an entry expires while hundreds of requests
are in flight. Without coordination each of them re-reads it (a herd on the table, measured as the
serving benchmark's p99); with this set, the first caller claims the key and re-reads it, and the
others answer with the value they already hold until it is back. Used by the caller resolver
(tenants, keys), the A/B pointer cache and the recent-events activity counters.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class InFlight:
    """A thread-safe set of keys being re-read, each by one caller."""

    def __init__(self) -> None:
        self._keys: set[Hashable] = set()
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._keys

    def claim(self, key: Hashable) -> bool:
        """Mark ``key`` as being re-read by the caller; False if someone else already is."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def release(self, key: Hashable) -> None:
        """The caller's re-read of ``key`` is over (done or failed)."""
        with self._lock:
            self._keys.discard(key)

    @contextmanager
    def reading(self, key: Hashable) -> Iterator[None]:
        """Mark ``key`` for the duration of the block, whoever else reads it too."""
        with self._lock:
            self._keys.add(key)
        try:
            yield
        finally:
            self.release(key)
