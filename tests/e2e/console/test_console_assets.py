"""The console's files as the api function serves them: content types, CSP, nothing else exposed.

Needs no browser, so it runs wherever the integration tier runs.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import RunningStack

pytestmark = [pytest.mark.integration]


def test_console_files_are_served_with_types_and_a_strict_csp(stack: RunningStack) -> None:
    with httpx.Client(base_url=stack.api_url) as http:
        redirect = http.get("/console")
        assert redirect.status_code == 308
        assert redirect.headers["location"] == "console/"
        for path, content_type in (
            ("/console/", "text/html"),
            ("/console/app.js", "text/javascript"),
            ("/console/style.css", "text/css"),
        ):
            response = http.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(content_type)
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert response.headers["x-content-type-options"] == "nosniff"
        assert http.get("/console/app.py").status_code == 404
        assert "/console/" not in http.get("/openapi.json").text
