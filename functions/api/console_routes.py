"""The web console: a static single-page app served from ``/console/`` on the API's own origin.

Same origin as the API, so the app calls it without CORS. Only the three known files are served, each
with its content type and a Content-Security-Policy that allows nothing but this origin.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from functions.common.errors import NotFoundError

CONSOLE_DIR: Final = Path(__file__).resolve().parent / "console"

#: The files the console consists of, and their content types.
ASSETS: Final[dict[str, str]] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

#: Nothing from elsewhere, no inline script or style, no framing, no plugins.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@cache
def read_asset(name: str) -> bytes:
    """The bytes of one console file, read once per container."""
    return (CONSOLE_DIR / name).read_bytes()


def asset_response(name: str) -> Response:
    """One console file with its content type and the security headers."""
    if name not in ASSETS:
        raise NotFoundError(f"no console file {name!r}")
    return Response(content=read_asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.get("")
def get_console_root() -> RedirectResponse:
    """``/console`` → ``/console/``, so the page's relative asset links resolve under any path prefix."""
    return RedirectResponse(url="console/", status_code=308)


@router.get("/")
def get_console() -> Response:
    """The console's page."""
    return asset_response("index.html")


@router.get("/{name}")
def get_console_asset(name: str) -> Response:
    """The console's script or style sheet."""
    return asset_response(name)
