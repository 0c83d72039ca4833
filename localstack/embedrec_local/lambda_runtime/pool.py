"""A fleet of emulated Lambda containers per function: scale-out, freezing and reclaiming.

An invocation takes an idle (frozen) container of its function, most recently used first, or starts a
new one (a cold start) up to ``max_containers`` per function; beyond that it waits for one to free up.
A container idle for ``idle_seconds`` is killed without notice, as Lambda reclaims them. A container
that failed (timeout, out of memory, crash) is discarded; the next invocation starts a fresh one.
A function with SnapStart has a snapshot (taken by ``LambdaFleet.take_snapshots`` when the stack starts,
as Lambda takes it when a version is published; else on its first cold start), and its cold starts are
restores from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from embedrec_local.lambda_runtime.container import (
    MAX_PAYLOAD_BYTES,
    Container,
    InvocationError,
    InvocationResult,
    LogSink,
    PostResponse,
    RequestTooLargeError,
    Snapshot,
)
from embedrec_local.lambda_runtime.definitions import FunctionDefinition

DEFAULT_IDLE_SECONDS = 300.0
DEFAULT_MAX_CONTAINERS = 8


@dataclass
class FunctionStats:
    """What a function's containers did (benchmarks and tests read it)."""

    cold_starts: int = 0
    restores: int = 0  # cold starts that were restores from the function's snapshot (SnapStart)
    invocations: int = 0
    reclaimed: int = 0
    failures: int = 0
    init_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)
    init_cpu_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # per invocation, in clock ticks (10 ms)
    # After the response, until the extensions were done (Lambda's PostRuntimeExtensionsDuration);
    # the billed duration of an invocation is its duration_ms plus this.
    post_response_ms: list[float] = field(default_factory=list)
    post_response_cpu_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    peak_containers: int = 0


class FunctionPool:
    """The containers of one function."""

    def __init__(
        self,
        definition: FunctionDefinition,
        python: str,
        base_environment: Mapping[str, str],
        *,
        max_containers: int = DEFAULT_MAX_CONTAINERS,
        log_sink: LogSink | None = None,
    ) -> None:
        self.definition = definition
        self._python = python
        self._base_environment = dict(base_environment)
        self._max_containers = max_containers
        self._log_sink = log_sink
        self._idle: list[Container] = []
        self._busy: set[Container] = set()
        self._starting = 0
        self._changed = threading.Condition()
        self.stats = FunctionStats()
        self._snapshot: Snapshot | None = None

    def invoke(self, event: Any) -> InvocationResult:
        """One synchronous invocation (RequestResponse)."""
        size = len(json.dumps(event, separators=(",", ":")).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise RequestTooLargeError(
                {
                    "errorType": "RequestEntityTooLargeException",
                    "errorMessage": f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the "
                    "InvokeFunction operation",
                },
                function_error=False,
            )
        container = self._acquire()
        try:
            result = container.invoke(event)
        except InvocationError:
            with self._changed:
                self.stats.failures += 1
            self._release_when_done(container)
            raise
        self._release_when_done(container)
        with self._changed:
            self.stats.invocations += 1
            self.stats.duration_ms.append(result.duration_ms)
            self.stats.cpu_ms.append(result.cpu_ms)
            if result.init_cpu_ms is not None:
                self.stats.init_cpu_ms.append(result.init_cpu_ms)
            self.stats.peak_rss_mb = max(self.stats.peak_rss_mb, result.max_rss_mb)
            if result.init_ms is not None:
                self.stats.init_ms.append(result.init_ms)
        return result

    def _acquire(self) -> Container:
        with self._changed:
            while True:
                while self._idle:
                    container = self._idle.pop()  # most recently used: the warmest
                    if container.alive:
                        self._busy.add(container)
                        return container
                if len(self._busy) + self._starting < self._max_containers:
                    self._starting += 1
                    break
                self._changed.wait()
        try:
            container = Container(
                self.definition,
                self._python,
                self._base_environment,
                self._log_sink,
                self._current_snapshot(),
            )
            try:
                container.init()
            except InvocationError:
                with self._changed:
                    self.stats.failures += 1
                raise
        finally:
            with self._changed:
                self._starting -= 1
                self._changed.notify_all()
        with self._changed:
            self._busy.add(container)
            self.stats.cold_starts += 1
            self.stats.restores += int(container.restored)
            self.stats.peak_containers = max(self.stats.peak_containers, len(self._busy) + len(self._idle))
        return container

    def take_snapshot(self) -> None:
        """SnapStart: start the function's snapshot now (Lambda takes it when a version is published),
        so that no cold start waits for it; without SnapStart nothing."""
        self._current_snapshot()

    def _current_snapshot(self) -> Snapshot | None:
        """The function's snapshot (taken on first need); one that died is taken again."""
        if not self.definition.snap_start:
            return None
        with self._changed:
            if self._snapshot is not None and not self._snapshot.alive:
                self._snapshot.close()
                self._snapshot = None
            if self._snapshot is None:
                self._snapshot = Snapshot(
                    self.definition, self._python, self._base_environment, self._log_sink
                )
            return self._snapshot

    def _release_when_done(self, container: Container) -> None:
        """Release the container now, or (its extensions still running) once they are done: Lambda
        neither freezes nor reuses a container before then, and the caller has its answer already."""
        if not container.finishing:
            self._release(container)
            return

        def finish() -> None:
            try:
                post: PostResponse | None = container.finish()
            except InvocationError:
                post = None
            finally:
                self._release(container)
            with self._changed:
                if post is None:
                    self.stats.failures += 1
                else:
                    self.stats.post_response_ms.append(post.duration_ms)
                    self.stats.post_response_cpu_ms.append(post.cpu_ms)

        threading.Thread(target=finish, name=f"lambda-{self.definition.name}-finish", daemon=True).start()

    def _release(self, container: Container) -> None:
        with self._changed:
            self._busy.discard(container)
            if container.alive:
                self._idle.append(container)
            self._changed.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """The stats as JSON, with the containers alive now and the function's limits."""
        with self._changed:
            stats = self.stats
            return {
                "memory_mb": self.definition.memory_mb,
                "snap_start": self.definition.snap_start,
                "timeout_s": self.definition.timeout_s,
                "containers": len(self._busy) + sum(1 for c in self._idle if c.alive),
                "busy": len(self._busy),  # invoked, or still running their work after the response
                "cold_starts": stats.cold_starts,
                "restores": stats.restores,
                "invocations": stats.invocations,
                "reclaimed": stats.reclaimed,
                "failures": stats.failures,
                "peak_containers": stats.peak_containers,
                "peak_rss_mb": round(stats.peak_rss_mb, 1),
                "init_ms": [round(v, 1) for v in stats.init_ms],
                "duration_ms": [round(v, 2) for v in stats.duration_ms],
                "init_cpu_ms": [round(v, 1) for v in stats.init_cpu_ms],
                "cpu_ms": [round(v, 1) for v in stats.cpu_ms],
                "post_response_ms": [round(v, 2) for v in stats.post_response_ms],
                "post_response_cpu_ms": [round(v, 1) for v in stats.post_response_cpu_ms],
            }

    def containers(self) -> int:
        """Containers alive (busy or frozen)."""
        with self._changed:
            return len(self._busy) + sum(1 for container in self._idle if container.alive)

    def reclaim(self, idle_seconds: float) -> int:
        """Kill the containers idle for ``idle_seconds`` or more (0: every idle one); returns how many."""
        now = time.monotonic()
        with self._changed:
            stale = [c for c in self._idle if now - c.last_used >= idle_seconds or not c.alive]
            self._idle = [c for c in self._idle if c not in stale]
        for container in stale:
            container.kill()
        with self._changed:
            self.stats.reclaimed += len(stale)
        return len(stale)

    def close(self) -> None:
        """Kill every container (busy ones too)."""
        with self._changed:
            everything = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
        for container in everything:
            container.kill()
        if self._snapshot is not None:
            self._snapshot.close()


class LambdaFleet:
    """Every function's pool, and a reaper that reclaims idle containers."""

    def __init__(
        self,
        definitions: Mapping[str, FunctionDefinition],
        python: str,
        base_environment: Mapping[str, str],
        *,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        max_containers: int = DEFAULT_MAX_CONTAINERS,
        log_sink: LogSink | None = None,
    ) -> None:
        self.pools = {
            name: FunctionPool(
                definition, python, base_environment, max_containers=max_containers, log_sink=log_sink
            )
            for name, definition in definitions.items()
        }
        self._idle_seconds = idle_seconds
        self._stopped = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="lambda-reaper", daemon=True)
        self._reaper.start()

    def pool(self, function_name: str) -> FunctionPool:
        """The pool of a function."""
        try:
            return self.pools[function_name]
        except KeyError:
            raise KeyError(f"no function named '{function_name}'") from None

    def invoke(self, function_name: str, event: Any) -> Any:
        """Invoke and return the function's result; ``InvocationError`` carries Lambda's error payload."""
        return self.pool(function_name).invoke(event).payload

    def take_snapshots(self) -> None:
        """Start the snapshot of every SnapStart function (the local stack's "publish")."""
        for pool in self.pools.values():
            pool.take_snapshot()

    def reclaim_all(self) -> int:
        """Kill every idle container now (tests: what a quiet hour does)."""
        return sum(pool.reclaim(0) for pool in self.pools.values())

    def _reap(self) -> None:
        while not self._stopped.wait(min(1.0, self._idle_seconds)):
            for pool in self.pools.values():
                pool.reclaim(self._idle_seconds)

    def close(self) -> None:
        """Stop the reaper and kill every container."""
        self._stopped.set()
        for pool in self.pools.values():
            pool.close()
