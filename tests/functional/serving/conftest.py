"""Serving fixtures: the serving app in-process over moto, and tenants with published models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from functions.common import resources
from tests.fixtures.serving.artifacts import PublishedModel, publish_model
from tests.functional.conftest import Shop

REFRESH_SECONDS = 0.3


@pytest.fixture(scope="session")
def world() -> synthetic.SyntheticWorld:
    """The walkthrough's scale: 5,000 items, 1,000 users."""
    return synthetic.make_world(5000, 1000, seed=21)


@pytest.fixture
def serving(aws_env: LocalNames, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The serving app, as a fresh container (a short pointer refresh so promotion tests stay quick)."""
    from functions.common.container import reset_container_state

    monkeypatch.setenv("EMBEDREC_MODEL_REFRESH_SECONDS", str(REFRESH_SECONDS))
    reset_container_state()
    from functions.serving.app import app

    with TestClient(app) as client:
        yield client
    reset_container_state()


def publish_for(
    aws_env: LocalNames,
    shop: Shop,
    world: synthetic.SyntheticWorld,
    version: str = "lightgcn_v1",
    **kwargs: object,
) -> PublishedModel:
    """Publish and activate ``version`` of ``world`` for the shop (the training job's real exporter)."""
    return publish_model(
        artifacts_bucket=aws_env.bucket(resources.ARTIFACTS_BUCKET),
        registry_table=aws_env.table(resources.MODEL_REGISTRY),
        tenant_id=shop.tenant_id,
        world=world,
        version=version,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def model(aws_env: LocalNames, shop: Shop, world: synthetic.SyntheticWorld) -> PublishedModel:
    """The shop's active ``lightgcn_v1``."""
    return publish_for(aws_env, shop, world)
