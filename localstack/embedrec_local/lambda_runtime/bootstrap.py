"""The runtime inside one emulated Lambda container (stdlib only: it runs on the bare Python 3.12).

Started as ``python3.12 -I -S -B bootstrap.py <in-fd> <out-fd> <handler> <path>...``: isolated (no
``PYTHON*`` variables, no user or site packages), no bytecode written (``/var/task`` and ``/opt`` are
read-only in Lambda), ``sys.path`` = the code asset, the layers, then the runtime's own packages (boto3),
as in Lambda. It imports the handler (the init phase), says so, then answers invocations one at a time:

    parent -> container: {"request_id", "deadline_ms", "event"}
    container -> parent: {"init_ms"} once, then {"result"} or {"error": {errorType, errorMessage, ...}}

Each frame is a 4-byte big-endian length and UTF-8 JSON. Between invocations the parent freezes the
process (SIGSTOP): anything a handler leaves running on a thread stops with it, as in Lambda.

Extensions: the process serves the Extensions API of Lambda's Runtime API endpoint on loopback
(``AWS_LAMBDA_RUNTIME_API``) for internal extensions (threads of the function's process). They register
during the init phase only; the init ends when each has asked for its first event. Each invocation's
``INVOKE`` event goes to every extension; once the handler's result is sent, the process waits until
every extension has asked for its next event, then sends ``{"done": true}``: only then may the parent
freeze or reuse the container, as Lambda does. The init frame says how many extensions registered.

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
import threading
import time
import traceback
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _Extension:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: list[dict[str, Any]] = []
        self.parked = False  # waiting in ``event/next`` with nothing pending: done with the last event


class ExtensionsApi:
    """The Extensions API (``/2020-01-01/extension/...``) for this container's internal extensions."""

    def __init__(self, extensions: dict[str, _Extension] | None = None) -> None:
        self._changed = threading.Condition()
        self._extensions = extensions if extensions is not None else {}
        self._registration_open = extensions is None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: an extension's connection serves every event
            disable_nagle_algorithm = True  # headers and body go out as written: no 40 ms delayed ACK

            def log_message(self, *_args: Any) -> None:  # the container's log is the function's own
                return

            def _reply(self, status: int, document: dict[str, Any], headers: dict[str, str]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/2020-01-01/extension/register":
                    self._reply(404, {"errorType": "InvalidRequest", "errorMessage": self.path}, {})
                    return
                status, document, headers = api.register(
                    self.headers.get("Lambda-Extension-Name", ""), list(body.get("events", []))
                )
                self._reply(status, document, headers)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                identifier = self.headers.get("Lambda-Extension-Identifier", "")
                if self.path != "/2020-01-01/extension/event/next" or identifier not in api._extensions:
                    self._reply(403, {"errorType": "Extension.Unknown", "errorMessage": self.path}, {})
                    return
                self._reply(200, api.next_event(identifier), {"Lambda-Extension-Event-Identifier": "1"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True).start()
        os.environ["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def registered(self) -> int:
        """How many extensions registered."""
        return len(self._extensions)

    def register(self, name: str, events: list[str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Register an internal extension (init phase only; internal extensions get no SHUTDOWN)."""
        with self._changed:
            if not self._registration_open:
                return 403, {"errorType": "Extension.InvalidState", "errorMessage": "init is over"}, {}
            if not name or set(events) - {"INVOKE"}:
                message = "an internal extension names itself and registers for INVOKE only"
                return 400, {"errorType": "InvalidRequest", "errorMessage": message}, {}
            identifier = str(uuid.uuid4())
            self._extensions[identifier] = _Extension(name)
        document = {
            "functionName": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            "functionVersion": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            "handler": os.environ.get("_HANDLER", ""),
        }
        return 200, document, {"Lambda-Extension-Identifier": identifier}

    def next_event(self, identifier: str) -> dict[str, Any]:
        """Block until the extension's next event (asking for it ends its part of the last one)."""
        extension = self._extensions[identifier]
        with self._changed:
            extension.parked = not extension.pending
            self._changed.notify_all()
            self._changed.wait_for(lambda: bool(extension.pending))
            extension.parked = False
            return extension.pending.pop(0)

    def close_registration(self) -> None:
        """The init phase is over: no more registrations."""
        with self._changed:
            self._registration_open = False

    def invoke(self, request_id: str, deadline_ms: int) -> None:
        """Send an invocation's ``INVOKE`` event to every extension."""
        arn = LambdaContext(request_id, deadline_ms).invoked_function_arn
        event = {
            "eventType": "INVOKE",
            "requestId": request_id,
            "deadlineMs": deadline_ms,
            "invokedFunctionArn": arn,
            "tracing": {},
        }
        with self._changed:
            for extension in self._extensions.values():
                extension.pending.append(dict(event))
                extension.parked = False
            self._changed.notify_all()

    def wait_until_idle(self) -> None:
        """Until every extension has asked for its next event (the parent enforces the deadline)."""
        with self._changed:
            self._changed.wait_for(lambda: all(e.parked for e in self._extensions.values()))

    def after_fork(self) -> ExtensionsApi:
        """A restored container's own endpoint, with the snapshot's registrations (its threads are gone)."""
        self._server.socket.close()  # the snapshot's listening socket, inherited
        return ExtensionsApi({key: _Extension(e.name) for key, e in self._extensions.items()})


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
    api = ExtensionsApi()
    try:
        handler = _import_handler(handler_name, argv[4:])
    except Exception as exc:  # Lambda reports a failed init on the invocation that needed it
        _send(out_fd, {"init_error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    api.close_registration()
    api.wait_until_idle()  # the init phase ends when every extension asked for its first event
    _send(out_fd, {"init_ms": (time.perf_counter() - started) * 1000, "extensions": api.registered})
    return serve(handler, api, in_fd, out_fd)


def snapshot(argv: list[str]) -> int:
    """SnapStart: init and the before-snapshot hooks once, then fork a restored container per request."""
    control = socket.socket(fileno=int(argv[2]))
    started = time.perf_counter()
    api = ExtensionsApi()
    try:
        handler = _import_handler(argv[3], argv[4:])
        imported = time.perf_counter()
        _run_hooks("before_snapshot")
    except Exception as exc:  # the version's publication fails: no container is ever restored
        _send(control.fileno(), {"init_error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    api.close_registration()
    api.wait_until_idle()
    done = time.perf_counter()
    _send(control.fileno(), {"init_ms": (imported - started) * 1000, "snapshot_ms": (done - imported) * 1000})
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored containers are reaped by the kernel
    while True:
        _message, fds, _flags, _address = socket.recv_fds(control, 16, 2)
        if not fds:
            return 0  # the parent closed the control socket
        with warnings.catch_warnings():
            # A Firecracker snapshot keeps every thread; a fork keeps only this one (the after-restore
            # hooks start the function's again). Python warns of locks another thread might hold.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(fds[1], 1)  # the container's own log stream
            os.dup2(fds[1], 2)
            os.close(fds[1])
            return restored(handler, api.after_fork(), fds[0])
        for fd in fds:
            os.close(fd)
        control.sendall(_HEADER.pack(pid))


def restored(handler: Any, api: ExtensionsApi, fd: int) -> int:
    """A container restored from the snapshot: the after-restore hooks, then invocations on ``fd``."""
    started = time.perf_counter()
    try:
        _run_hooks("after_restore")
    except Exception as exc:  # Lambda: the restore fails and the invocation reports it
        _send(fd, {"init_error": _error(exc, "Runtime.AfterRestoreError")})
        return 1
    api.wait_until_idle()
    restore_ms = (time.perf_counter() - started) * 1000
    _send(fd, {"init_ms": restore_ms, "restored": True, "extensions": api.registered})
    return serve(handler, api, fd, fd)


def serve(handler: Any, api: ExtensionsApi, in_fd: int, out_fd: int) -> int:
    """Answer invocations one at a time until the parent closes its end."""
    while True:
        try:
            request = _receive(in_fd)
        except EOFError:
            return 0
        context = LambdaContext(request["request_id"], int(request["deadline_ms"]))
        if api.registered:
            api.invoke(request["request_id"], int(request["deadline_ms"]))
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
        if api.registered:  # the response is out; the invocation ends when the extensions are done
            api.wait_until_idle()
            _send(out_fd, {"done": True})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
