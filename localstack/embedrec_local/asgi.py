"""One ASGI app on one port: serving routes to the serving app, everything else to the api app.

API Gateway routes the same table (``functions.common.routes``) in AWS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from functions.common.routes import is_serving_path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def combine(api_app: ASGIApp, serving_app: ASGIApp) -> ASGIApp:
    """An ASGI app dispatching each request by path, as the API Gateway routes do."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_serving_path(scope["path"]):
            await serving_app(scope, receive, send)
        else:
            await api_app(scope, receive, send)

    return app
