"""The runtime inside one emulated Lambda container (stdlib only: it runs on the bare Python 3.12).

Started as ``python3.12 -I -S -B bootstrap.py <in-fd> <out-fd> <handler> <path>...``: isolated (no
``PYTHON*`` variables, no user or site packages), no bytecode written (``/var/task`` and ``/opt`` are
read-only in Lambda), ``sys.path`` = the code asset, the layers, then the runtime's own packages (boto3),
as in Lambda. It imports the handler (the init phase), says so, then answers invocations one at a time:

    parent -> container: {"request_id", "deadline_ms", "event"}
    container -> parent: {"init_ms"} once, then {"result"} or {"error": {errorType, errorMessage, ...}}

Each frame is a 4-byte big-endian length and UTF-8 JSON. Between invocations the parent freezes the
process (SIGSTOP): anything a handler leaves running on a thread stops with it, as in Lambda.

SnapStart (``python3.12 -I -S -B bootstrap.py --snapshot <control-fd> <handler> <path>...``): the
process runs the init phase once, then the hooks registered with ``snapshot_restore_py`` to run before
the snapshot, and reports ``{"init_ms", "snapshot_ms"}`` on its control socket (a Unix socket). It is
then the snapshot: each restore request on the control socket carries one end of a new socket pair
and the write end of the container's log pipe (``SCM_RIGHTS``); the snapshot forks and answers the
child's pid (4 bytes). The child, a copy of the snapshot's memory as Lambda restores one, runs the
after-restore hooks, reports ``{"init_ms"}`` (the restore) on its socket and serves invocations on it
like any container.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

_HEADER = struct.Struct(">I")


class LambdaContext:
    """The attributes of the Python runtime's context object."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the invocation's deadline."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    message: dict[str, Any] = json.loads(_read_exactly(fd, size))
    return message


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_exception(exc)[-8:],
    }


def _import_handler(handler_name: str, path: list[str]) -> Any:
    """The init phase: import the handler's module (``Runtime.ImportModuleError`` on failure)."""
    sys.path[:0] = path
    # Lambda's log capture takes each line as it is printed (EMF metrics are log lines).
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    module_name, _, attribute = handler_name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def _run_hooks(kind: str) -> None:
    """Call the ``snapshot_restore_py`` hooks of ``kind`` (``before_snapshot``/``after_restore``), if any
    were registered: the runtime calls them in the order of registration."""
    registry = sys.modules.get("snapshot_restore_py")
    if registry is None:
        return
    for hook, args, kwargs in getattr(registry, f"get_{kind}")():
        hook(*args, **kwargs)


def main(argv: list[str]) -> int:
    """Init, then serve invocations until the parent closes the pipe."""
    if argv[1] == "--snapshot":
        return snapshot(argv)
    in_fd, out_fd, handler_name = int(argv[1]), int(argv[2]), argv[3]
    started = time.perf_counter()
    try:
        handler = _import_handler(handler_name, argv[4:])
    except Exception as exc:  # Lambda reports a failed init on the invocation that needed it
        _send(out_fd, {"init_error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    _send(out_fd, {"init_ms": (time.perf_counter() - started) * 1000})
    return serve(handler, in_fd, out_fd)


def snapshot(argv: list[str]) -> int:
    """SnapStart: init and the before-snapshot hooks once, then fork a restored container per request."""
    control = socket.socket(fileno=int(argv[2]))
    started = time.perf_counter()
    try:
        handler = _import_handler(argv[3], argv[4:])
        imported = time.perf_counter()
        _run_hooks("before_snapshot")
    except Exception as exc:  # the version's publication fails: no container is ever restored
        _send(control.fileno(), {"init_error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    done = time.perf_counter()
    _send(control.fileno(), {"init_ms": (imported - started) * 1000, "snapshot_ms": (done - imported) * 1000})
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored containers are reaped by the kernel
    while True:
        _message, fds, _flags, _address = socket.recv_fds(control, 16, 2)
        if not fds:
            return 0  # the parent closed the control socket
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(fds[1], 1)  # the container's own log stream
            os.dup2(fds[1], 2)
            os.close(fds[1])
            return restored(handler, fds[0])
        for fd in fds:
            os.close(fd)
        control.sendall(_HEADER.pack(pid))


def restored(handler: Any, fd: int) -> int:
    """A container restored from the snapshot: the after-restore hooks, then invocations on ``fd``."""
    started = time.perf_counter()
    try:
        _run_hooks("after_restore")
    except Exception as exc:  # Lambda: the restore fails and the invocation reports it
        _send(fd, {"init_error": _error(exc, "Runtime.AfterRestoreError")})
        return 1
    _send(fd, {"init_ms": (time.perf_counter() - started) * 1000, "restored": True})
    return serve(handler, fd, fd)


def serve(handler: Any, in_fd: int, out_fd: int) -> int:
    """Answer invocations one at a time until the parent closes its end."""
    while True:
        try:
            request = _receive(in_fd)
        except EOFError:
            return 0
        context = LambdaContext(request["request_id"], int(request["deadline_ms"]))
        try:
            result = handler(request["event"], context)
            reply: dict[str, Any] = {"result": result}
            payload = json.dumps(reply, separators=(",", ":"))  # not serialisable: a function error
        except Exception as exc:
            sys.stderr.write(f"[ERROR] {type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
            reply = {"error": _error(exc)}
            payload = ""
        if payload:
            data = payload.encode()
            view = memoryview(_HEADER.pack(len(data)) + data)
            while view:
                view = view[os.write(out_fd, view) :]
        else:
            _send(out_fd, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
