"""The one place where errors become HTTP responses (STYLE.md rule 7)."""

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


def _json_safe(value: Any) -> Any:
    """A value that JSON can carry: non-finite floats (a NaN someone sent us) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """422 with FastAPI's error list, made JSON-safe (the offending input may itself be NaN)."""
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})


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
