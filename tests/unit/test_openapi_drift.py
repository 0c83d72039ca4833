"""The committed OpenAPI documents (docs/openapi/) are what the code serves: `make openapi` refreshes them."""

from __future__ import annotations

import pytest

from embedrec_local.openapi import DOCS, documents, render


@pytest.mark.parametrize("name", ["api.json", "serving.json"])
def test_committed_openapi_matches_the_code(name: str) -> None:
    committed = (DOCS / name).read_text()

    assert committed == render(documents()[name]), f"docs/openapi/{name} is stale: run `make openapi`"
