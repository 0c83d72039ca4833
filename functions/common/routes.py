"""Which HTTP routes the ``serving`` function answers; the ``api`` function answers the rest.

API Gateway (the CDK app) and the embedded local stack both route from this table.
"""

from __future__ import annotations

import re

SERVING_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/api/v1/recommendations"),
    ("GET", "/api/v1/items/{item_id}/similar"),
    ("GET", "/api/v1/health"),
    ("GET", "/health"),
)

# A parameter may hold "/": an item id such as "sku/1" arrives as one encoded segment ("sku%2F1"),
# which API Gateway routes as one segment and the ASGI path shows decoded.
_PATTERNS = tuple(
    re.compile("^" + re.sub(r"\{[^}]+\}", ".+", path) + "/?$") for _method, path in SERVING_ROUTES
)


def is_serving_path(path: str) -> bool:
    """Whether ``path`` belongs to the serving function (any method: it answers 405 itself)."""
    return any(pattern.match(path) for pattern in _PATTERNS)
