"""A Lambda invocation runs its blocking work inline; a request under uvicorn hands it to a thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from functions.http.invocation import lambda_handler, run_blocking, sole_request_on_loop


def _thread_of_blocking_work() -> tuple[bool, bool]:
    """(whether the request was marked sole, whether its blocking work ran on the loop's thread)."""
    loop_thread = threading.get_ident()

    async def request() -> tuple[bool, bool]:
        worker = await run_blocking(threading.get_ident)
        return sole_request_on_loop(), worker == loop_thread

    loop = asyncio.new_event_loop()
    try:
        # As Mangum does: the request is a task created on the invocation's loop
        return loop.run_until_complete(loop.create_task(request()))
    finally:
        loop.close()


def test_an_invocation_runs_blocking_work_inline_and_the_mark_ends_with_it() -> None:
    def invoke(event: Any, context: Any) -> tuple[bool, bool]:
        return _thread_of_blocking_work()

    assert lambda_handler(invoke)({}, None) == (True, True)
    assert sole_request_on_loop() is False


def test_outside_an_invocation_blocking_work_leaves_the_loop() -> None:
    assert _thread_of_blocking_work() == (False, False)
