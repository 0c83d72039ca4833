"""Security fixtures: both apps on one moto, and tenant B's resources built through the API."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from embedrec_local import synthetic_models as synthetic
from embedrec_local.provision import LocalNames
from tests.functional.analytics.conftest import add_models
from tests.functional.conftest import Shop
from tests.functional.serving.conftest import publish_for
from tests.functional.serving.conftest import serving as serving  # re-exported fixture

B_VERSION = "lightgcn_v7"
B_SHOPPER = "buser_0001"
B_ITEMS_CSV = (
    b"item_id,title,category,price,brand,description\n"
    b"bitem_0001,Secret Widget,Widgets,19.99,Bee,Only B sells this\n"
    b"bitem_0002,Hidden Gadget,Gadgets,29.99,Bee,Only B sells this too\n"
)


@dataclass(frozen=True)
class Credentials:
    """One tenant's three kinds of credential."""

    jwt: str
    read_key: str
    write_key: str

    def by_kind(self) -> dict[str, str]:
        """``{"jwt": …, "read_key": …, "write_key": …}``."""
        return {"jwt": self.jwt, "read_key": self.read_key, "write_key": self.write_key}


@dataclass(frozen=True)
class VictimResources:
    """Tenant B's resources, whose identifiers must never show up in tenant A's answers."""

    tenant_id: str
    key_id: str
    key_prefix: str
    upload_id: str
    job_id: str
    test_id: str
    version: str
    item_id: str
    user_id: str
    shopper_id: str  # a shopper with stored interactions (GDPR erasure target)

    def markers(self) -> tuple[str, ...]:
        """Strings unique to B."""
        return (
            self.tenant_id,
            self.key_id,
            self.key_prefix,
            self.upload_id,
            self.job_id,
            self.test_id,
            self.version,
            "bitem_",
            "Secret Widget",
        )


@pytest.fixture(scope="session")
def small_world() -> synthetic.SyntheticWorld:
    """A small catalogue for B's model (fast to export)."""
    return synthetic.make_world(200, 60, seed=8)


def create_key(client: TestClient, shop: Shop, permissions: list[str]) -> dict[str, str]:
    """A new API key of the shop (as its admin)."""
    response = client.post(
        "/api/v1/api-keys",
        json={"name": f"key {'+'.join(permissions)}", "permissions": permissions},
        headers=shop.auth,
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def credentials_of(client: TestClient, shop: Shop) -> Credentials:
    """The shop's admin JWT, a read-only key and a read-write key."""
    return Credentials(
        jwt=shop.token,
        read_key=create_key(client, shop, ["read"])["key"],
        write_key=create_key(client, shop, ["read", "write"])["key"],
    )


def build_victim(
    client: TestClient,
    serving_client: TestClient,
    aws_env: LocalNames,
    victim: Shop,
    world: synthetic.SyntheticWorld,
) -> VictimResources:
    """Give B items, interactions, a key, a training job, a model, an A/B test and analytics."""
    key = create_key(client, victim, ["read", "write"])
    items = client.post(
        "/api/v1/items", files={"file": ("items.csv", B_ITEMS_CSV, "text/csv")}, headers=victim.auth
    )
    assert items.status_code == 200, items.text
    event = {"user_id": B_SHOPPER, "item_id": "bitem_0001", "interaction_type": "purchase"}
    assert client.post("/api/v1/interactions", json=event, headers=victim.auth).status_code == 200
    job = client.post("/api/admin/training/trigger", json={}, headers=victim.auth)
    assert job.status_code == 202, job.text
    add_models(victim.tenant_id, B_VERSION, "two_tower_v7")  # the registry's records, as training writes
    publish_for(aws_env, victim, world, version=B_VERSION)
    test = client.post(
        "/api/admin/ab-tests",
        json={
            "name": "B's secret test",
            "variants": [
                {"id": "control", "model_version": B_VERSION, "traffic": 50},
                {"id": "treatment", "model_version": "two_tower_v7", "traffic": 50},
            ],
            "metric": "conversion_rate",
            "duration_days": 7,
        },
        headers=victim.auth,
    )
    assert test.status_code == 201, test.text
    user_id = str(world.user_ids[0])
    recommended = serving_client.post(
        "/api/v1/recommendations", json={"user_id": user_id, "count": 5}, headers=victim.auth
    )
    assert recommended.status_code == 200, recommended.text
    return VictimResources(
        tenant_id=victim.tenant_id,
        key_id=key["id"],
        key_prefix=key["key_prefix"],
        upload_id=items.json()["upload_id"],
        job_id=job.json()["job_id"],
        test_id=test.json()["id"],
        version=B_VERSION,
        item_id=str(world.item_ids[0]),
        user_id=user_id,
        shopper_id=B_SHOPPER,
    )
