"""Fuzz fixtures: both apps on one moto, a tenant admin with data, quotas off (the fuzzer is one tenant)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from tests.conftest import ADMIN_KEY
from tests.functional.conftest import Shop
from tests.functional.fuzz.runner import HeadersFor
from tests.functional.security import routes


@pytest.fixture
def no_quotas(monkeypatch: pytest.MonkeyPatch, aws_env: LocalNames) -> None:
    """Per-plan quotas off: thousands of requests a second from one tenant are the point here."""
    from functions.api.app import app as api_app
    from functions.serving.app import app as serving_app

    for app in (api_app, serving_app):
        monkeypatch.setattr(app.state.authenticator.callers, "quotas", None)


def headers_for(shop: Shop) -> HeadersFor:
    """A tenant admin's JWT on tenant routes, the platform key on platform routes, nothing on public ones."""

    def pick(method: str, path: str) -> dict[str, str]:
        kind = routes.classify((method, path))
        if kind == "tenant":
            return {"Authorization": f"Bearer {shop.token}"}
        if kind == "platform_admin":
            return {"Authorization": f"Bearer {ADMIN_KEY}"}
        return {}

    return pick


@pytest.fixture
def seeded_shop(client: TestClient, shop: Shop) -> Shop:
    """The shop with a catalogue, so generated ids sometimes hit real rows."""
    csv = b"item_id,title,category,price,brand\nitem_0001,Phone,Phones,9.99,A\nitem_0002,Case,Cases,1.5,B\n"
    response = client.post("/api/v1/items", files={"file": ("items.csv", csv, "text/csv")}, headers=shop.auth)
    assert response.status_code == 200, response.text
    return shop
