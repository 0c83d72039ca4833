"""The one place where errors become HTTP responses."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from functions.common.errors import (
    AuthenticationError,
    ConflictError,
    EmbedrecError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from functions.common.observability import logger

_STATUS: dict[type[EmbedrecError], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    InvalidInputError: 422,
    TooManyRequestsError: 429,
    ServiceUnavailableError: 503,
}
RETRY_AFTER_SECONDS = "5"


class ErrorBody(BaseModel):
    """Every error the functions answer: a message for the caller and the error's kind."""

    detail: str
    error: str


def status_for(error: EmbedrecError) -> int:
    """The HTTP status of an error (its nearest mapped ancestor)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_response(error: EmbedrecError) -> JSONResponse:
    """The JSON response for an error: ``{"detail": message, "error": kind}``."""
    status = status_for(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, TooManyRequestsError):
        headers["Retry-After"] = str(error.retry_after_s)
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
        logger.warning(
            "dependency unavailable", extra={"error": error.message, "cause": repr(error.__cause__)}
        )
    return JSONResponse(
        status_code=status,
        content={"detail": error.message, "error": type(error).__name__},
        headers=headers,
    )


#: Echoes of the caller's input in a 422 are cut to these sizes, so no answer grows with the request.
MAX_LISTED_ERRORS = 20
_ECHO_TEXT = 100
_ECHO_ITEMS = 5
_ECHO_DEPTH = 3


def _echo(value: Any, depth: int = 0) -> Any:
    """A short, JSON-safe echo of (part of) the input: long text clipped, long lists and deep values cut.

    Non-finite floats (a NaN someone sent us) become strings.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= _ECHO_TEXT else value[:_ECHO_TEXT] + "…"
    if isinstance(value, bytes):
        return _echo(value[: _ECHO_TEXT + 1].decode("utf-8", "replace"), depth)
    if isinstance(value, dict | list | tuple) and depth >= _ECHO_DEPTH:
        return "…"
    if isinstance(value, dict):
        entries = list(value.items())
        shown = {_echo(str(key)): _echo(item, depth + 1) for key, item in entries[:_ECHO_ITEMS]}
        return shown | ({"…": f"{len(entries) - _ECHO_ITEMS} more"} if len(entries) > _ECHO_ITEMS else {})
    if isinstance(value, list | tuple):
        items = [_echo(item, depth + 1) for item in value[:_ECHO_ITEMS]]
        return items + ([f"… {len(value) - _ECHO_ITEMS} more"] if len(value) > _ECHO_ITEMS else [])
    if value is None or isinstance(value, bool | int | float):
        return value
    return _echo(str(value), depth)


def _echoed_error(error: Any) -> dict[str, Any]:
    """One pydantic error with every part that can carry the caller's input cut short."""
    return {
        "type": error.get("type"),
        "loc": [part if isinstance(part, int) else _echo(str(part)) for part in error.get("loc", ())],
        "msg": _echo(str(error.get("msg", ""))),
        "input": _echo(error.get("input")),
        **({"ctx": _echo(error["ctx"], 1)} if "ctx" in error else {}),
    }


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """422 with FastAPI's error list (the first ones), each echo of the input cut short and JSON-safe."""
    errors = exc.errors()
    detail = [_echoed_error(error) for error in list(errors)[:MAX_LISTED_ERRORS]]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


def install_error_handlers(app: FastAPI) -> None:
    """Map every ``EmbedrecError`` raised below a route, and request validation errors."""

    async def _handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EmbedrecError)  # registered for EmbedrecError only
        return error_response(exc)

    async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # registered for RequestValidationError only
        return validation_response(exc)

    app.add_exception_handler(EmbedrecError, _handle)
    app.add_exception_handler(RequestValidationError, _invalid)
    _document_errors(app)


def _document_errors(app: FastAPI) -> None:
    """Declare the error bodies in the app's OpenAPI: clients (and the fuzzer) may rely on them.

    Every operation gets a ``default`` response (``ErrorBody``: 401/403/404/409/413/429/503), and its 422
    is either FastAPI's validation list or an ``ErrorBody`` (content rejected by the logic).
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.setdefault(
                    "default",
                    {"description": "An error", "content": {"application/json": {"schema": error_ref}}},
                )
                invalid = responses.get("422", {}).get("content", {}).get("application/json")
                if invalid is not None and "schema" in invalid:
                    invalid["schema"] = {"anyOf": [invalid["schema"], error_ref]}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
