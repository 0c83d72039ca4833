"""The per-container response cache: bounded LRU with a TTL and a per-user freshness fingerprint.

Entries are keyed by tenant, user, filters, count and model version, and stored with the user's
fingerprint — a digest of the keys of the user's recent events the answer was computed from. A lookup with
another fingerprint is a miss (and drops the entry): a new event for the user invalidates every cached
answer of that user, whatever its filters, the next time one is asked for.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    fingerprint: str
    expires_at: float


class ResponseCache(Generic[V]):
    """Recent answers, at most ``max_entries``, each valid ``ttl_seconds``."""

    def __init__(
        self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether anything is ever cached."""
        return self._max_entries > 0 and self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, fingerprint: str) -> V | None:
        """The cached value if present, fresh and computed with the same fingerprint."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.fingerprint != fingerprint or entry.expires_at <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.value

    def put(self, key: Hashable, fingerprint: str, value: V) -> None:
        """Remember ``value``; the least recently used entries go beyond ``max_entries``."""
        if not self.enabled:
            return
        with self._lock:
            self._entries[key] = _Entry(value, fingerprint, self._clock() + self._ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
