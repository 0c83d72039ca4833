"""Where a request's blocking work runs: inline in a Lambda invocation, on a worker thread elsewhere.

A Lambda container serves one request at a time, and Mangum runs it on the container's event loop
with nothing else waiting there. A worker thread then buys nothing and costs a thread start per
invocation (anyio's workers end with the ASGI root task, which is the invocation) plus two thread
switches per blocking call, which a loaded host turns into milliseconds of scheduling delay. Under
uvicorn (the local stack's in-process apps) one loop serves many requests at once, and blocking work
must leave it.

``lambda_handler`` marks each invocation as the only request on its loop; ``run_blocking`` then calls
the work directly, and hands it to a worker thread everywhere else. It also ends every invocation by
handing what the request deferred to the after-response extension (``functions.common.after_response``;
nothing where that is not active).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any, TypeVar

from fastapi.concurrency import run_in_threadpool

from functions.common.after_response import after_response

T = TypeVar("T")
Handler = Callable[[Any, Any], Any]

_SOLE_REQUEST: ContextVar[bool] = ContextVar("embedrec_sole_request_on_loop", default=False)


def lambda_handler(asgi_handler: Handler) -> Handler:
    """``asgi_handler`` (Mangum) with each invocation marked as its event loop's only request."""

    @wraps(asgi_handler)
    def handle(event: Any, context: Any) -> Any:
        # Mangum's task copies this context when it is created, so the whole request sees the mark.
        token = _SOLE_REQUEST.set(True)
        try:
            return asgi_handler(event, context)
        finally:
            _SOLE_REQUEST.reset(token)
            if after_response.active:
                after_response.hand_over(context.aws_request_id)

    return handle


def sole_request_on_loop() -> bool:
    """Whether this request is a Lambda invocation, alone on its event loop."""
    return _SOLE_REQUEST.get()


async def run_blocking(work: Callable[[], T]) -> T:
    """``work()`` inline in a Lambda invocation, else on a worker thread (the loop serves others)."""
    if _SOLE_REQUEST.get():
        return work()
    return await run_in_threadpool(work)
