"""Routes of the serving function, one module per resource.

The hot routes are ``async``. In a Lambda invocation (alone on its event loop,
``functions.http.invocation``) the logic runs inline, AWS calls included. Under uvicorn a warm answer
(model, counters and caches in memory) is computed on the event loop, with no worker-thread hand-off,
and only when the logic needs AWS after all does it run again on a worker thread
(``off_the_loop_if_blocking``, ``functions.common.aws.no_blocking_calls``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool

from functions.common import aws
from functions.http.invocation import sole_request_on_loop

T = TypeVar("T")


async def off_the_loop_if_blocking(work: Callable[[], T], *, retryable: bool = True) -> T:
    """``work()`` on the event loop if it makes no blocking call, else on a worker thread.

    ``work`` must not change anything before its first blocking call (``retryable``), since a
    refused call (``WouldBlockError``) means it runs again from the start.
    """
    if sole_request_on_loop():
        return work()  # a Lambda invocation: nothing else waits on this loop
    if not retryable:
        return await run_in_threadpool(work)
    try:
        with aws.no_blocking_calls():
            return work()
    except aws.WouldBlockError:
        return await run_in_threadpool(work)
