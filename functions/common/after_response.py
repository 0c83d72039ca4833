"""Work an invocation does after its response: an internal Lambda extension (the Extensions API).

Lambda freezes a container only when its runtime AND every registered extension have asked for their
next event. An internal extension is a thread of the function's own process, registered during the
init phase. So a handler can return its response at once (the client has it) and leave the rest of
the invocation's work (serving: handing off its impressions, one SQS ``SendMessage``) to this thread,
which asks for its next event only when that work is done. The work stays inside the invocation:
Lambda does not freeze or reuse the container before it ends, bills it (the
``PostRuntimeExtensionsDuration`` metric), and times it out with the invocation. Nothing is left to
a thread of a frozen container.

The protocol per invocation: the thread gets the ``INVOKE`` event (with the request id), and the
handler's wrapper (``functions.http.invocation.lambda_handler``) hands over, always, the work its
request deferred: a list that may be empty. The thread runs that list, then asks for the next event.
If no list comes before the invocation's deadline, the thread logs it and moves on, so a container
is never held open by a missing hand-over.

Where there is no Runtime API (tests, uvicorn; ``AWS_LAMBDA_RUNTIME_API`` is Lambda's own variable,
the one this module reads), where the function's settings turn it off, or where registration fails,
``start`` returns False and ``defer`` runs the work at once, before the response.

SnapStart: the thread registers in the init phase, before the snapshot, and Lambda's snapshot keeps
it. A restore by the local runtime forks the snapshot, which keeps no thread; ``ensure_running`` (an
after-restore hook) starts it again there and does nothing where it still runs.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from functions.common.observability import logger

Work = Callable[[], None]

_API = "/2020-01-01/extension"
_NAME = "embedrec-after-response"
_MARGIN_MS = 50  # the thread stops waiting for an invocation's work this long before its deadline


class AfterResponse:
    """The function's one internal extension: runs each invocation's deferred work after its response."""

    def __init__(self, name: str = _NAME) -> None:
        self._name = name
        self._identifier: str | None = None
        self._changed = threading.Condition()
        self._handed_over: dict[str, list[Work]] = {}  # request id -> its work
        self._deferred: list[Work] = []  # the current invocation's (one invocation at a time)
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether deferred work runs after the response (registered, and its thread started)."""
        return self._identifier is not None

    def start(self, *, when: Callable[[], bool] = lambda: True) -> bool:
        """Register with the Extensions API (init phase only) and start the thread; False where there
        is no Runtime API, ``when()`` (asked only in a Lambda runtime) is false, or the registration is
        refused."""
        if self._identifier is not None:
            return True
        endpoint = os.environ.get("AWS_LAMBDA_RUNTIME_API")
        if not endpoint or not when():
            return False
        connection = http.client.HTTPConnection(endpoint, timeout=5)
        try:
            connection.request(
                "POST",
                f"{_API}/register",
                body=json.dumps({"events": ["INVOKE"]}),
                headers={"Lambda-Extension-Name": self._name, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            identifier = response.getheader("Lambda-Extension-Identifier")
        except OSError as exc:
            logger.warning("after-response extension not registered", extra={"error": str(exc)})
            return False
        finally:
            connection.close()
        if response.status != 200 or not identifier:
            logger.warning("after-response extension refused", extra={"status": response.status})
            return False
        self._identifier = identifier
        self._spawn()
        return True

    def ensure_running(self) -> None:
        """Start the thread again where a restore did not keep it (the local runtime forks)."""
        if self._identifier is not None and (self._thread is None or not self._thread.is_alive()):
            self._changed = threading.Condition()  # a lock copied by a fork may look held
            self._handed_over = {}
            self._deferred = []
            self._spawn()

    def defer(self, work: Work) -> None:
        """Run ``work`` after the response of this invocation; at once where the extension is not active."""
        if self._identifier is None:
            work()
        else:
            self._deferred.append(work)

    def hand_over(self, request_id: str) -> None:
        """End of the handler: give the thread this invocation's work (called for every invocation)."""
        if self._identifier is None:
            return
        work, self._deferred = self._deferred, []
        with self._changed:
            self._handed_over[request_id] = work
            self._changed.notify_all()

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        endpoint = os.environ["AWS_LAMBDA_RUNTIME_API"]
        connection = http.client.HTTPConnection(endpoint)  # no timeout: /next blocks until an invocation
        while True:
            try:
                event = self._next(connection)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                logger.warning("after-response extension: next event failed", extra={"error": str(exc)})
                connection.close()
                time.sleep(0.1)
                continue
            if event.get("eventType") == "INVOKE":
                self._run_work(str(event["requestId"]), int(event["deadlineMs"]))

    def _next(self, connection: http.client.HTTPConnection) -> dict[str, Any]:
        assert self._identifier is not None
        headers = {"Lambda-Extension-Identifier": self._identifier}
        connection.request("GET", f"{_API}/event/next", headers=headers)
        response = connection.getresponse()
        document: dict[str, Any] = json.loads(response.read())
        if response.status != 200:
            raise ValueError(f"event/next answered {response.status}: {document}")
        return document

    def _run_work(self, request_id: str, deadline_ms: int) -> None:
        with self._changed:
            handed_over = self._changed.wait_for(
                lambda: request_id in self._handed_over,
                timeout=max(0.0, (deadline_ms - _MARGIN_MS) / 1000 - time.time()),
            )
            work = self._handed_over.pop(request_id, [])
        if not handed_over:
            logger.warning("after-response work never handed over", extra={"request_id": request_id})
        for job in work:
            try:
                job()
            except Exception:  # one failed job must not keep the others (or the container) waiting
                logger.exception("after-response work failed", extra={"request_id": request_id})


after_response = AfterResponse()
