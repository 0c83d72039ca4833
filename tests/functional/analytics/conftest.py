"""Analytics fixtures: a pinned clock, a catalogue, and model versions in the tenant's registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from functions.analytics.impressions import ImpressionBuffer
from functions.analytics.store.counters import AnalyticsCounters
from tests.functional.conftest import Shop

NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
TODAY = "2025-01-10"
ITEMS_CSV = (
    b"item_id,title,category,price,brand\n"
    b"item_0001,iPhone 15 Pro,Smartphones,999.99,Apple\n"
    b"item_0002,MacBook Pro,Laptops,2499.99,Apple\n"
    b"item_0003,AirPods Pro,Audio,249.99,Apple\n"
)


@pytest.fixture
def pinned_clock(client: TestClient) -> Iterator[datetime]:
    """Every request of the api app sees ``NOW``."""
    from functions.api.app import app
    from functions.http.dependencies import utc_now

    app.dependency_overrides[utc_now] = lambda: NOW
    yield NOW
    app.dependency_overrides.pop(utc_now, None)


def add_models(tenant_id: str, *versions: str) -> None:
    """Register trained versions for the tenant, as the training workflow would."""
    from functions.training.dependencies import model_registry
    from functions.training.store.model_registry import ModelVersion

    for version in versions:
        model_registry().put_version(
            tenant_id,
            ModelVersion(
                version=version,
                status="candidate",
                model_type=version.rsplit("_v", 1)[0],
                metrics={},
                created_at="x",
            ),
        )


def upload_items(client: TestClient, shop: Shop) -> None:
    """The shop's catalogue (titles for top products)."""
    response = client.post(
        "/api/v1/items", files={"file": ("items.csv", ITEMS_CSV, "text/csv")}, headers=shop.auth
    )
    assert response.status_code == 200, response.text


def serve(
    counters: AnalyticsCounters,
    tenant_id: str,
    item_ids: list[str],
    *,
    now: datetime,
    variant: str | None = None,
    test_id: str | None = None,
) -> str:
    """Count one served response as serving does (stored at once); returns its recommendation id."""
    buffer = ImpressionBuffer(counters, inline=True)
    return buffer.add(tenant_id, item_ids, variant=variant, test_id=test_id, now=now)
