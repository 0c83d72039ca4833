"""The one place where errors become HTTP responses (STYLE.md rule 7)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from functions.common.errors import (
    AuthenticationError,
    ConflictError,
    EmbedrecError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from functions.common.observability import logger

_STATUS: dict[type[EmbedrecError], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    InvalidInputError: 422,
    ServiceUnavailableError: 503,
}
RETRY_AFTER_SECONDS = "5"


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


def install_error_handlers(app: FastAPI) -> None:
    """Map every ``EmbedrecError`` raised below a route."""

    async def _handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EmbedrecError)  # registered for EmbedrecError only
        return error_response(exc)

    app.add_exception_handler(EmbedrecError, _handle)
