"""One emulated Lambda container: a Python 3.12 process running ``bootstrap.py`` for one function.

Limits are Lambda's: the memory size (an RSS watchdog: above it the process is killed, as Lambda
kills a container at its memory size), the timeout (killed at the deadline), and 6 MB payloads each
way for a synchronous invocation. Between invocations the process is frozen with SIGSTOP.

A function with SnapStart starts its containers from a :class:`Snapshot` instead: one process that ran
the init phase and the before-snapshot hooks once (Lambda does this when a version is published), and
forks a restored container per cold start, which runs only the after-restore hooks. A fork restores the
snapshot's memory in microseconds; Lambda's restore of a microVM snapshot takes longer and is billed
as ``Restore Duration``, which this emulation cannot show.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from embedrec_local.lambda_runtime.definitions import FunctionDefinition

#: Synchronous invocation payload quota, each way (Lambda: 6 MB = 6,291,456 bytes).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
BOOTSTRAP = Path(__file__).resolve().with_name("bootstrap.py")
_HEADER = struct.Struct(">I")
_WATCH_INTERVAL_S = 0.02
# Lambda's on-demand init phase has 10 s; one that takes longer is run again within the invocation,
# under the function's timeout: 10 s + the timeout in all.
_INIT_LIMIT_S = 10.0
_ids = itertools.count(1)

LogSink = Callable[[str], None]


class InvocationError(Exception):
    """An invocation failed the way Lambda reports it: ``error`` is Lambda's error payload."""

    def __init__(self, error: dict[str, Any], *, function_error: bool = True) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = error
        self.function_error = function_error  # False: refused before running (e.g. payload too large)


class RequestTooLargeError(InvocationError):
    """The event is above the synchronous payload quota (Lambda: RequestEntityTooLargeException)."""


@dataclass
class InvocationResult:
    """What one invocation returned and cost."""

    payload: Any
    duration_ms: float
    init_ms: float | None  # set on a cold start: the init phase before this invocation
    max_rss_mb: float  # the container's peak RSS so far
    cpu_ms: float = 0.0  # CPU time (user + system, every thread) the container spent on this invocation
    init_cpu_ms: float | None = None  # set on a cold start: the CPU time of its init phase


@dataclass
class PostResponse:
    """What an invocation did after its response: its extensions' work (Lambda's
    ``PostRuntimeExtensionsDuration``), until the container could be frozen."""

    duration_ms: float
    cpu_ms: float


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB from /proc; (0, 0) when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return 0.0, 0.0

    def mib(name: str) -> float:
        return int(fields.get(name, "0 kB").split()[0]) / 1024

    return mib("VmRSS"), mib("VmHWM")


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used so far, every thread (ended ones too), in ms.

    Counted in clock ticks (10 ms): one invocation's figure is coarse, a mean over many is not. On a
    loaded host it says what the code costs where the wall time also holds the wait for a core.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime field 14 and stime field 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) * 1000 / _TICKS_PER_S


def _environment(
    definition: FunctionDefinition, base_environment: dict[str, str], initialization: str
) -> dict[str, str]:
    """The variables Lambda gives the function's runtime, over the template's and the stack's."""
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    return {
        **base_environment,
        **definition.environment,
        "AWS_LAMBDA_FUNCTION_NAME": definition.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(definition.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{definition.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_INITIALIZATION_TYPE": initialization,
        "_HANDLER": definition.handler,
        "LAMBDA_TASK_ROOT": str(definition.code_dir),
        "LAMBDA_RUNTIME_DIR": str(definition.runtime_dir),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


def _start_runtime(
    definition: FunctionDefinition,
    python: str,
    environment: dict[str, str],
    arguments: list[str],
    pass_fds: tuple[int, ...],
    log_sink: LogSink | None,
) -> subprocess.Popen[str]:
    """``bootstrap.py`` on Lambda's interpreter flags, its output pumped line by line to ``log_sink``."""
    process = subprocess.Popen(
        [python, "-I", "-S", "-B", str(BOOTSTRAP), *arguments, definition.handler, *definition.sys_path()],
        env=environment,
        cwd=definition.code_dir,
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )

    _pump_logs(process.stdout, log_sink, f"lambda-{definition.name}-{process.pid}-logs")
    return process


def _pump_logs(stream: IO[str] | None, log_sink: LogSink | None, name: str) -> None:
    """A thread handing each line of ``stream`` to ``log_sink`` until it ends."""

    def pump() -> None:
        for line in stream or ():
            if log_sink is not None:
                log_sink(line)

    threading.Thread(target=pump, daemon=True, name=name).start()


class _Process(Protocol):
    """What a container needs of its process: a started runtime, or a container restored from a snapshot."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self) -> int: ...


class _RestoredProcess:
    """A container forked by its function's snapshot process (which reaps it): not this process's child,
    so it is watched through ``/proc`` and its own exit status is not seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._killed = False

    def poll(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = "gone"
        if state not in ("gone", "Z", "X"):
            return None
        return -signal.SIGKILL if self._killed else 1

    def kill(self) -> None:
        self._killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        while (code := self.poll()) is None:
            time.sleep(0.005)
        return code


class Snapshot:
    """SnapStart: a function's init phase and before-snapshot hooks run once; containers fork from it."""

    def __init__(
        self,
        definition: FunctionDefinition,
        python: str,
        base_environment: dict[str, str],
        log_sink: LogSink | None = None,
    ) -> None:
        self.definition = definition
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        environment = _environment(definition, base_environment, "snap-start")
        self.process = _start_runtime(
            definition,
            python,
            environment,
            ["--snapshot", str(theirs.fileno())],
            (theirs.fileno(),),
            log_sink,
        )
        theirs.close()
        self._lock = threading.Lock()
        self._ready: dict[str, Any] | None = None
        self._log_sink = log_sink

    @property
    def alive(self) -> bool:
        """Whether the snapshot can still restore containers."""
        return self.process.poll() is None

    def _wait_ready(self) -> dict[str, Any]:
        if self._ready is None:
            self._control.settimeout(_INIT_LIMIT_S + self.definition.timeout_s)
            (size,) = _HEADER.unpack(_receive_exactly(self._control, _HEADER.size))
            self._ready = json.loads(_receive_exactly(self._control, size))
            self._control.settimeout(None)
        return self._ready

    def restore(self) -> tuple[socket.socket, _Process]:
        """A new container's end of its socket and its process, forked from the snapshot."""
        with self._lock:
            ready = self._wait_ready()
            if "init_error" in ready:
                raise InvocationError(ready["init_error"])
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            log_r, log_w = os.pipe()  # the container's own log stream, as Lambda gives each one
            try:
                socket.send_fds(self._control, [b"r"], [theirs.fileno(), log_w])
                (pid,) = _HEADER.unpack(_receive_exactly(self._control, _HEADER.size))
            except OSError as exc:
                ours.close()
                os.close(log_r)
                raise InvocationError(
                    {
                        "errorType": "SnapStartNotReadyException",
                        "errorMessage": f"the snapshot is gone: {exc}",
                    }
                ) from exc
            finally:
                theirs.close()
                os.close(log_w)
        logs = open(log_r, encoding="utf-8", errors="replace")  # noqa: SIM115 - read to its end by the pump
        _pump_logs(logs, self._log_sink, f"lambda-{self.definition.name}-{pid}-logs")
        return ours, _RestoredProcess(pid)

    def close(self) -> None:
        """End the snapshot (its restored containers are separate processes, killed by their pool)."""
        self._control.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("the snapshot process closed its control socket")
        data += chunk
    return bytes(data)


class Container:
    """A started container of one function; ``invoke`` is called by one thread at a time.

    With a ``snapshot`` (SnapStart) the container is restored from it instead of running the init phase.
    """

    def __init__(
        self,
        definition: FunctionDefinition,
        python: str,
        base_environment: dict[str, str],
        log_sink: LogSink | None = None,
        snapshot: Snapshot | None = None,
    ) -> None:
        self.definition = definition
        self.number = next(_ids)
        self.last_used = time.monotonic()
        self.invocations = 0
        self.peak_rss_mb = 0.0
        self.init_ms: float | None = None  # spawn to ready: interpreter start and the handler's import
        self.import_ms: float | None = None  # the handler's import (restored: the after-restore hooks)
        self.init_cpu_ms: float | None = None  # the init phase's CPU time
        self.restored = snapshot is not None
        self.extensions = 0  # internal extensions registered in the init phase
        self._finishing: tuple[float, float] | None = None  # (deadline, CPU at the invocation's start)
        self._unread = bytearray()  # read from the container past the last frame
        self._frozen = False
        self._dead = False
        self._started = time.perf_counter()
        self.process: _Process
        if snapshot is not None:
            self._socket: socket.socket | None
            self._socket, self.process = snapshot.restore()
            self._to_child = self._from_child = self._socket.fileno()
            return
        self._socket = None
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        environment = _environment(definition, base_environment, "on-demand")
        arguments = [str(to_child_r), str(from_child_w)]
        self.process = _start_runtime(
            definition, python, environment, arguments, (to_child_r, from_child_w), log_sink
        )
        os.close(to_child_r)
        os.close(from_child_w)

    @property
    def _init_timeout_s(self) -> float:
        return _INIT_LIMIT_S + self.definition.timeout_s

    @property
    def alive(self) -> bool:
        """Whether the process still runs (a killed or crashed container is discarded)."""
        return not self._dead and self.process.poll() is None

    def init(self) -> float:
        """Wait for the init phase (the handler's import, or a restore); returns its duration in ms."""
        message = self._receive(time.monotonic() + self._init_timeout_s, "init")
        if "init_error" in message:
            self.kill()
            raise InvocationError(message["init_error"])
        self.import_ms = float(message["init_ms"])
        self.extensions = int(message.get("extensions", 0))
        self.init_ms = (time.perf_counter() - self._started) * 1000
        self.init_cpu_ms = _cpu_ms(self.process.pid)
        return self.init_ms

    def invoke(self, event: Any) -> InvocationResult:
        """Run one invocation (the container is thawed for it and frozen after it).

        With extensions the result (or the error) comes back as soon as the runtime sent it
        (``finishing``): the container stays thawed and busy until ``finish`` saw every extension done.
        """
        data = json.dumps(
            {
                "request_id": str(uuid.uuid4()),
                "deadline_ms": int((time.time() + self.definition.timeout_s) * 1000),
                "event": event,
            },
            separators=(",", ":"),
        ).encode()
        self.thaw()
        cpu_before = _cpu_ms(self.process.pid)
        started = time.perf_counter()
        try:
            self._write(_HEADER.pack(len(data)) + data)
        except OSError as exc:
            self.kill()
            raise InvocationError(
                {"errorType": "Runtime.ExitError", "errorMessage": f"the runtime exited: {exc}"}
            ) from exc
        deadline = time.monotonic() + self.definition.timeout_s
        message = self._receive(deadline, "invoke")
        duration_ms = (time.perf_counter() - started) * 1000
        cpu_ms = _cpu_ms(self.process.pid) - cpu_before
        self.invocations += 1
        self.last_used = time.monotonic()
        if self.extensions:
            self._finishing = (deadline, cpu_before + cpu_ms)
        else:
            self.freeze()
        if "error" in message:
            raise InvocationError(message["error"])
        first = self.invocations == 1
        return InvocationResult(
            message.get("result"),
            duration_ms,
            self.init_ms if first else None,
            self.peak_rss_mb,
            cpu_ms=cpu_ms,
            init_cpu_ms=self.init_cpu_ms if first else None,
        )

    @property
    def finishing(self) -> bool:
        """Whether the last invocation answered and its extensions still run (see ``finish``)."""
        return self._finishing is not None

    def finish(self) -> PostResponse:
        """Wait for the extensions to finish the invocation (under its deadline and memory), then freeze."""
        if self._finishing is None:
            return PostResponse(0.0, 0.0)
        (deadline, cpu_at_response), self._finishing = self._finishing, None
        started = time.perf_counter()
        self._receive(deadline, "invoke")  # {"done": true}
        elapsed_ms = (time.perf_counter() - started) * 1000
        post = PostResponse(elapsed_ms, _cpu_ms(self.process.pid) - cpu_at_response)
        self.last_used = time.monotonic()
        self.freeze()
        return post

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._to_child, view) :]

    def _receive(self, deadline: float, phase: str) -> dict[str, Any]:
        """Read one frame, watching memory and the deadline; kills the container on either.

        Bytes read past the frame stay for the next call: with extensions, the ``done`` frame may
        arrive in the same read as the result.
        """
        buffer = self._unread
        while True:
            needed = _HEADER.size
            if len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack(buffer[: _HEADER.size])
                if phase == "invoke" and size > MAX_PAYLOAD_BYTES:
                    self.kill()
                    raise InvocationError(
                        {
                            "errorType": "Function.ResponseSizeTooLarge",
                            "errorMessage": "Response payload size exceeded maximum allowed payload "
                            f"size ({MAX_PAYLOAD_BYTES} bytes).",
                        }
                    )
                needed = _HEADER.size + size
                if len(buffer) >= needed:
                    message: dict[str, Any] = json.loads(bytes(buffer[_HEADER.size : needed]))
                    del buffer[:needed]
                    return message
            self._watch_memory()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                timeout = self.definition.timeout_s if phase == "invoke" else self._init_timeout_s
                raise InvocationError(
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} Task timed out after "
                        f"{timeout:.2f} seconds",
                    }
                )
            ready, _, _ = select.select([self._from_child], [], [], min(remaining, _WATCH_INTERVAL_S))
            if not ready:
                continue
            chunk = os.read(self._from_child, max(needed - len(buffer), 1 << 16))
            if not chunk:
                self._watch_memory()
                self.kill()
                code = self.process.wait()
                how = f"exit status {code}" if code >= 0 else f"signal: {signal.Signals(-code).name}"
                raise InvocationError(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: Error: Runtime exited with error: {how}",
                    }
                )
            buffer += chunk

    def _watch_memory(self) -> None:
        """Kill the container past its memory size, as Lambda does (the peak counts: short spikes too)."""
        _current, peak = _rss_mb(self.process.pid)
        self.peak_rss_mb = max(self.peak_rss_mb, peak)
        if peak > self.definition.memory_mb:
            self.kill()
            raise InvocationError(
                {
                    "errorType": "Runtime.OutOfMemory",
                    "errorMessage": "RequestId: Error: Runtime exited with error: signal: killed "
                    f"(max memory used {peak:.0f} MB of {self.definition.memory_mb} MB)",
                }
            )

    def freeze(self) -> None:
        """SIGSTOP: nothing in the container runs until the next invocation."""
        if self.alive and not self._frozen:
            os.kill(self.process.pid, signal.SIGSTOP)
            self._frozen = True

    def thaw(self) -> None:
        """SIGCONT before an invocation."""
        if self._frozen and self.alive:
            os.kill(self.process.pid, signal.SIGCONT)
        self._frozen = False

    def kill(self) -> None:
        """Reclaim the container without notice (SIGKILL works on a frozen process too)."""
        self._dead = True
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._socket is not None:
            self._socket.close()
        else:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_child = self._from_child = -1
