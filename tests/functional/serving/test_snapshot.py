"""SnapStart hooks of serving: built before the snapshot, renewed after a restore, answers after it."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from embedrec_local.provision import LocalNames
from functions.common import aws
from functions.common.secrets import resolve_secret, secrets_provider
from functions.serving import snapshot
from functions.serving.dependencies import recommendation_service
from tests.fixtures.serving.artifacts import PublishedModel
from tests.functional.conftest import Shop

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _credentials(client: Any) -> Any:
    return client._request_signer._credentials


def _loader(client: Any) -> Any:
    return client._loader


def test_before_the_snapshot_the_container_services_are_built_without_a_tenant(serving: TestClient) -> None:
    app: Any = serving.app

    snapshot.prepare_snapshot(app)

    assert recommendation_service.cache_info().currsize == 1
    assert aws.dynamodb_client.cache_info().currsize == 1
    assert secrets_provider.cache_info().currsize == 1
    assert recommendation_service().impressions_pending is False
    assert recommendation_service().models.loaded_tenants() == []  # no tenant's model is snapshotted


def test_after_a_restore_clients_credentials_and_random_state_are_the_containers_own(
    serving: TestClient,
) -> None:
    app: Any = serving.app
    snapshot.prepare_snapshot(app)
    snapshotted_client, snapshotted_service = aws.dynamodb_client(), recommendation_service()
    random.seed(7)  # every container restored from one snapshot would draw this same sequence
    snapshotted_random = random.getstate()

    snapshot.renew_after_restore(app)

    renewed = aws.dynamodb_client()
    assert renewed is not snapshotted_client
    assert _credentials(renewed) is not _credentials(snapshotted_client)
    assert _loader(renewed) is _loader(snapshotted_client)  # parsed service models are kept
    assert recommendation_service() is not snapshotted_service
    assert recommendation_service().models is not snapshotted_service.models
    assert random.getstate() != snapshotted_random


def test_a_restored_container_answers(serving: TestClient, shop: Shop, model: PublishedModel) -> None:
    app: Any = serving.app
    snapshot.prepare_snapshot(app)
    snapshot.renew_after_restore(app)

    response = serving.post(
        "/api/v1/recommendations", json={"user_id": "user_0001", "count": 5}, headers=shop.auth
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["recommendations"]) == 5
    assert model.version


def test_hooks_are_registered_where_the_runtime_provides_the_registry(
    serving: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    before: list[Hook] = []
    after: list[Hook] = []

    def recorder(hooks: list[Hook]) -> Callable[..., Any]:
        def register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
            hooks.append((func, args, kwargs))
            return func

        return register

    registry: Any = types.ModuleType("snapshot_restore_py")  # the registry Lambda's runtime provides
    registry.register_before_snapshot = recorder(before)
    registry.register_after_restore = recorder(after)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", registry)

    assert snapshot.register_snapshot_hooks(serving.app) is True  # type: ignore[arg-type]

    assert before == [(snapshot.prepare_snapshot, (serving.app,), {})]
    assert after == [(snapshot.renew_after_restore, (serving.app,), {})]


def test_without_the_registry_nothing_is_registered(
    serving: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # an import of it fails

    assert snapshot.register_snapshot_hooks(serving.app) is False  # type: ignore[arg-type]


def test_a_secret_is_read_with_the_containers_client(aws_env: LocalNames) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="embedrec-test-key", SecretString="k3y")["ARN"]

    assert resolve_secret(None, arn) == "k3y"

    assert secrets_provider().client is aws.secretsmanager_client()
