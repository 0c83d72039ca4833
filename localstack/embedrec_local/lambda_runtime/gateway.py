"""API Gateway (HTTP API, Lambda proxy integration, payload format 2.0) in front of the fleet.

Each HTTP request becomes the event API Gateway would send: routed by the same table as the CDK app
(``functions.common.routes`` for serving, ``{proxy+}`` and the docs routes for the api function),
duplicate headers and query parameters joined with commas, cookies in ``cookies``, and the body
base64-encoded unless its content type is text (HTTP APIs base64-encode every other body, multipart
uploads included). The function's answer is turned back into an HTTP response; a function error,
timeout or crash is API Gateway's ``500 Internal Server Error``, a body above HTTP APIs' 10 MB is
``413`` and an event above Lambda's 6 MB payload quota is ``413`` as well.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import anyio
from anyio.to_thread import run_sync

from cdk import names
from embedrec_local.lambda_runtime.container import InvocationError, RequestTooLargeError
from embedrec_local.lambda_runtime.pool import LambdaFleet
from functions.common import deployment
from functions.common.routes import SERVING_ROUTES

log = logging.getLogger("embedrec.local.gateway")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: HTTP APIs' request payload quota.
MAX_HTTP_API_BODY_BYTES = 10 * 1024 * 1024
ACCOUNT = "123456789012"
API_ID = "local"
_TEXT_TYPES = re.compile(r"^(text/.*|application/(.+\+)?(json|xml|javascript)|application/graphql)$")
# The CDK app's routes (cdk/constructs/api.py): serving routes, the docs, then /api/{proxy+}. In AWS
# CloudFront serves /console/* from S3 (cdk/constructs/console.py); here the api function's copy does.
_DOCS_ROUTES = names.DOCS_ROUTES
_PROXY_PREFIX = names.API_PROXY_ROUTE.removesuffix("{proxy+}")
_CONSOLE_PREFIX = "/console"
#: The local stack's own control routes (no API Gateway route starts so): what the containers did,
#: reclaiming every idle container now (what a quiet hour does in AWS), and turning a function's queue
#: event source mapping off and on (``POST .../event-source-mappings/{function}/disable``, ``/enable``).
CONTROL_PREFIX = "/_local/lambda/"
_MAPPINGS = CONTROL_PREFIX + "event-source-mappings/"


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{([^}+]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


_SERVING = [(f"ANY {path}", _route_pattern(path)) for path in dict.fromkeys(p for _m, p in SERVING_ROUTES)]


def route(method: str, raw_path: str) -> tuple[str, str, dict[str, str]] | None:
    """(function, routeKey, pathParameters) for a request as the HTTP API's routes match it; None: 404."""
    for key, pattern in _SERVING:
        match = pattern.match(raw_path)
        if match:
            return deployment.SERVING.name, key, {k: unquote(v) for k, v in match.groupdict().items()}
    if method == "GET" and raw_path in _DOCS_ROUTES:
        return deployment.API.name, f"GET {raw_path}", {}
    if raw_path.startswith(_PROXY_PREFIX):
        proxy = unquote(raw_path.removeprefix(_PROXY_PREFIX))
        return deployment.API.name, f"ANY {names.API_PROXY_ROUTE}", {"proxy": proxy}
    if raw_path == _CONSOLE_PREFIX or raw_path.startswith(_CONSOLE_PREFIX + "/"):
        return deployment.API.name, "$default", {}
    return None


def is_text(content_type: str) -> bool:
    """Whether an HTTP API passes a body of this type as text (else base64)."""
    return bool(_TEXT_TYPES.match(content_type.split(";", 1)[0].strip().lower()))


def http_api_event(scope: Scope, body: bytes) -> tuple[str, dict[str, Any]] | None:
    """The function a request goes to and its payload 2.0 event; None when no route matches."""
    method = str(scope["method"])
    raw_path = (scope.get("raw_path") or b"").decode("latin-1") or str(scope["path"])
    raw_path = raw_path.split("?", 1)[0]
    routed = route(method, raw_path)
    if routed is None:
        return None
    function, route_key, path_parameters = routed
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name_bytes, value_bytes in scope["headers"]:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    raw_query = scope.get("query_string", b"").decode("latin-1")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    client = scope.get("client") or ("127.0.0.1", 0)
    text = is_text(headers.get("content-type", "")) if body else True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": headers.get("host", "localhost").split(".", 1)[0],
            "http": {
                "method": method,
                "path": unquote(raw_path),
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "sourceIp": client[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16] + "=",
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()
    return function, event


def _message(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return (
        status,
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        body,
    )


def http_response(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The HTTP response API Gateway makes of a payload 2.0 answer."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # A bare value: API Gateway infers a 200 JSON answer.
        body = json.dumps(result).encode()
        return 200, [(b"content-type", b"application/json")], body
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = [(str(k).lower().encode(), str(v).encode()) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name).lower().encode(), str(v).encode()) for v in values]
    headers += [(b"set-cookie", str(cookie).encode()) for cookie in result.get("cookies") or []]
    headers = [(k, v) for k, v in headers if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return int(result["statusCode"]), headers, body


class HttpApiGateway:
    """The ASGI app: one Lambda invocation per request, on a worker thread (the fleet blocks)."""

    def __init__(
        self,
        fleet: LambdaFleet,
        *,
        max_in_flight: int = 64,
        before_api: Callable[[str, str], object] | None = None,
        mappings: Mapping[str, Callable[[bool], None]] | None = None,
    ) -> None:
        self.fleet = fleet
        self._mappings = dict(mappings or {})  # function name -> enable (True) / disable (False)
        self._limiter = anyio.CapacityLimiter(max_in_flight)
        # Called with (method, path) before each request to the api function (the local stack drains
        # the impressions and events queues).
        self._before_api = before_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status, headers, body = await self._answer(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _control(self, method: str, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if method == "GET" and path == CONTROL_PREFIX + "stats":
            document: Any = {name: pool.snapshot() for name, pool in self.fleet.pools.items()}
        elif method == "POST" and path == CONTROL_PREFIX + "reclaim":
            document = {"reclaimed": self.fleet.reclaim_all()}
        elif method == "POST" and path.startswith(_MAPPINGS) and path.count("/") == 5:
            function, action = path.removeprefix(_MAPPINGS).split("/")
            if function not in self._mappings or action not in ("enable", "disable"):
                return _message(404, "Not Found")
            self._mappings[function](action == "enable")
            document = {"function": function, "enabled": action == "enable"}
        else:
            return _message(404, "Not Found")
        body = json.dumps(document).encode()
        return (
            200,
            [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            body,
        )

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if str(scope["path"]).startswith(CONTROL_PREFIX):
            return await run_sync(self._control, str(scope["method"]), str(scope["path"]))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_HTTP_API_BODY_BYTES:
                return _message(413, "Request Entity Too Large")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        routed = http_api_event(scope, b"".join(chunks))
        if routed is None:
            return _message(404, "Not Found")
        function, event = routed
        if function == deployment.API.name and self._before_api is not None:
            await run_sync(self._before_api, str(scope["method"]), str(scope["path"]))
        started = time.perf_counter()
        try:
            result = await run_sync(self.fleet.invoke, function, event, limiter=self._limiter)
        except RequestTooLargeError:
            return _message(413, "Request Entity Too Large")
        except InvocationError as exc:
            log.warning("%s %s: function %s failed: %s", scope["method"], scope["path"], function, exc)
            return _message(500, "Internal Server Error")
        finally:
            scope.setdefault("state", {})["integration_ms"] = (time.perf_counter() - started) * 1000
        return http_response(result)
