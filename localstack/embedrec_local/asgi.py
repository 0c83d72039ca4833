"""One ASGI app on one port: serving routes to the serving app, everything else to the api app.

API Gateway routes the same table (``functions.common.routes``) in AWS.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.concurrency import run_in_threadpool

from embedrec_local.event_sources import drain_before_api, events_event_source, impressions_event_source
from embedrec_local.provision import LocalNames
from embedrec_local.runner import LambdaRunner
from functions.common.observability import metrics
from functions.common.routes import is_serving_path
from functions.common.runtime import freeze_long_lived_objects

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def combine(
    api_app: ASGIApp, serving_app: ASGIApp, *, before_api: Callable[[str, str], object] | None = None
) -> ASGIApp:
    """An ASGI app dispatching each request by path, as the API Gateway routes do.

    After each request the shared metrics set is flushed, as ``metrics.log_metrics`` does around
    every Lambda invocation (the local stack serves the apps directly, not through the handlers).
    ``before_api`` runs (on a worker thread) before each request to the api app, with its method and path.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await api_app(scope, receive, send)
            return
        serving = is_serving_path(scope["path"])
        if not serving and before_api is not None:
            await run_in_threadpool(before_api, str(scope["method"]), str(scope["path"]))
        try:
            await (serving_app if serving else api_app)(scope, receive, send)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return app


def local_app() -> ASGIApp:
    """The local stack's app (a factory, so uvicorn can start it in several worker processes)."""
    from embedrec_local.emf import forward_stdout_metrics
    from functions.api.app import app as api_app
    from functions.serving.app import app as serving_app

    forward_stdout_metrics()
    freeze_long_lived_objects()  # both apps are imported: start-up's objects leave the collector's sight
    # Analytics reads see every response served before them, and training or erasure every event
    # accepted before them: the api app answers after the impressions and events queues are drained
    # (in this process, whichever worker it is).
    region = os.environ.get("AWS_REGION", "us-east-1")
    impressions = impressions_event_source(LambdaRunner(), LocalNames(), region)
    events = events_event_source(LambdaRunner(), LocalNames(), region)
    return combine(api_app, serving_app, before_api=drain_before_api(impressions, events))
