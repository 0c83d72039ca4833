"""``make openapi``: write the committed OpenAPI documents of both apps (``docs/openapi/``).

The API reference is the OpenAPI document (served at ``/docs`` too); a test fails when the committed
copy drifts from the code, so reviews see every contract change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"


def documents() -> dict[str, dict[str, Any]]:
    """The current OpenAPI document of each app, by file name."""
    from functions.api.app import app as api_app
    from functions.serving.app import app as serving_app

    return {"api.json": api_app.openapi(), "serving.json": serving_app.openapi()}


def render(document: dict[str, Any]) -> str:
    """The committed text form (stable key order, trailing newline)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write every document."""
    DOCS.mkdir(parents=True, exist_ok=True)
    for name, document in documents().items():
        (DOCS / name).write_text(render(document))
        print(f"wrote {DOCS / name}")  # noqa: T201 - the tool's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
