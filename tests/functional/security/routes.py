"""Every route of both apps, classified by who may call it (the isolation matrix and the fuzzer use it).

A route missing here fails ``test_every_route_is_classified``: adding an endpoint forces a decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

Access = Literal["read", "write", "admin"]
RouteKey = tuple[str, str]  # (method, path template)

# FastAPI's own documentation routes (plain Starlette routes, not APIRoutes).
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

PUBLIC: frozenset[RouteKey] = frozenset(
    {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/health"),
        ("GET", "/console"),
        ("GET", "/console/"),
        ("GET", "/console/{name}"),
    }
)
PLATFORM_ADMIN: frozenset[RouteKey] = frozenset(
    {("POST", "/api/admin/tenants"), ("POST", "/api/admin/users")}
)
# Tenant-scoped routes and the least a credential needs: "read"/"write" (an API key's permission or a
# login), "admin" (a tenant admin's login; API keys never pass).
TENANT: dict[RouteKey, Access] = {
    ("POST", "/api/v1/api-keys"): "admin",
    ("GET", "/api/v1/api-keys"): "admin",
    ("DELETE", "/api/v1/api-keys/{key_id}"): "admin",
    ("POST", "/api/v1/items"): "write",
    ("POST", "/api/v1/interactions"): "write",
    ("POST", "/api/v1/uploads"): "write",
    ("GET", "/api/v1/uploads/{upload_id}"): "read",
    ("DELETE", "/api/v1/items/{item_id:path}"): "write",
    ("DELETE", "/api/v1/users/{user_id:path}"): "write",
    ("POST", "/api/v1/users/erase"): "write",
    ("POST", "/api/admin/training/trigger"): "admin",
    ("GET", "/api/admin/training/status/{job_id}"): "read",
    ("GET", "/api/admin/training/model-types"): "read",
    ("GET", "/api/v1/models"): "read",
    ("POST", "/api/v1/models/{version}/activate"): "admin",
    ("GET", "/api/v1/analytics/summary"): "read",
    ("GET", "/api/v1/analytics/top-products"): "read",
    ("POST", "/api/admin/ab-tests"): "admin",
    ("GET", "/api/admin/ab-tests"): "read",
    ("GET", "/api/admin/ab-tests/{test_id}"): "read",
    ("POST", "/api/admin/ab-tests/{test_id}/stop"): "admin",
    ("GET", "/api/admin/ab-tests/{test_id}/results"): "read",
    # serving
    ("POST", "/api/v1/recommendations"): "read",
    ("GET", "/api/v1/items/{item_id:path}/similar"): "read",
    ("GET", "/api/v1/health"): "read",
}


def api_routes(app: FastAPI) -> Iterator[RouteKey]:
    """(method, path) of every APIRoute of ``app``, including routers' routes (HEAD is implied)."""
    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                yield method, route.path


def other_routes(app: FastAPI) -> set[str]:
    """Paths of routes that are not APIRoutes (FastAPI's docs, mounts)."""
    return {
        getattr(context.route, "path", repr(context.route))
        for context in iter_route_contexts(app.routes)
        if not isinstance(context.route, APIRoute)
    }


def classify(key: RouteKey) -> str:
    """``public``, ``platform_admin``, ``tenant`` or ``unclassified``."""
    if key in PUBLIC:
        return "public"
    if key in PLATFORM_ADMIN:
        return "platform_admin"
    if key in TENANT:
        return "tenant"
    return "unclassified"
