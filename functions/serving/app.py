"""The ``serving`` function: recommendations, similar items and health (faiss + onnxruntime, never torch).

Routes parse and map; ``functions.serving.service`` holds the logic; models load lazily on a tenant's
first request (nothing heavy at import). Errors and callers are handled by the shared ``functions.http``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from functions.common.after_response import after_response
from functions.common.observability import metrics
from functions.common.runtime import freeze_long_lived_objects
from functions.http.errors import install_error_handlers
from functions.http.invocation import lambda_handler, run_blocking
from functions.http.principal import install_authenticator
from functions.serving import telemetry
from functions.serving.dependencies import flush_impressions, impressions_pending
from functions.serving.routes import health, items, recommendations
from functions.serving.settings import get_serving_settings
from functions.serving.snapshot import register_snapshot_hooks

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ImpressionsWrittenPerRequest:
    """After each request, hand off the impressions it collected (one SQS message).

    In Lambda the hand-off runs after the response, on the after-response extension
    (``functions.common.after_response``): still within the invocation, since the container is not
    frozen or reused before it is done, but the client no longer waits for it. Without that extension
    (in-process runner) the handler returns only after the hand-off, run inline; under uvicorn the
    answer has been sent already.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and impressions_pending():
                if after_response.active:
                    after_response.defer(_hand_off_after_response)
                else:
                    started = time.perf_counter()
                    await run_blocking(flush_impressions)
                    telemetry.impressions_written((time.perf_counter() - started) * 1000)


def _hand_off_after_response() -> None:
    started = time.perf_counter()
    flush_impressions()
    # The handler's metrics were flushed with its response: this one is written on its own.
    telemetry.impressions_written((time.perf_counter() - started) * 1000, now=True)


def create_app() -> FastAPI:
    """Build the serving application."""
    app = FastAPI(
        title="embedrec serving",
        version="0.1.0",
        description="Personalised recommendations, similar items and model health for a shop.",
    )
    for router in (recommendations.router, items.router, health.router):
        app.include_router(router)
    install_error_handlers(app)
    install_authenticator(app, get_serving_settings)
    app.add_middleware(ImpressionsWrittenPerRequest)
    return app


app = create_app()
# One EMF flush per invocation: latency, cache hits, ANN time and items served. Each invocation is
# its loop's only request, so blocking work runs inline (functions.http.invocation).
handler = metrics.log_metrics(lambda_handler(Mangum(app, lifespan="off")))
# The impressions hand-off runs after the response (an internal extension registers in the init phase).
after_response.start(when=lambda: get_serving_settings().after_response)
# With SnapStart: clients and services built before the snapshot, renewed after each restore.
register_snapshot_hooks(app)
freeze_long_lived_objects()  # after the imports of the init phase (functions.common.runtime)
