"""Unit fixtures: synthetic worlds and bundles built in memory (no AWS)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from embedrec_local import synthetic_models as synthetic
from functions.common.errors import NotFoundError
from functions.serving.bundle import ModelBundle
from functions.serving.loader import load_bundle
from functions.training.store.model_registry import ActivePointer

TENANT = "tenant_unit"


class MemoryObjects:
    """An ``ObjectReader`` over a dict (counts reads, so tests can see what was fetched)."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.bucket = "memory"
        self.reads: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        try:
            return self.objects[key]
        except KeyError:
            raise NotFoundError(f"{key} does not exist") from None

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def download(self, key: str, destination: Path) -> str:
        data = self.get_bytes(key)
        destination.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def add_version(self, tenant_id: str, version: str, files: dict[str, bytes]) -> ActivePointer:
        prefix = f"models/{tenant_id}/{version}/"
        self.objects.update({prefix + name: data for name, data in files.items()})
        return ActivePointer(version, prefix + "manifest.json", 1)


def bundle_for(
    world: synthetic.SyntheticWorld,
    *,
    version: str = "lightgcn_v1",
    index_kind: str = "flat_ip",
    **params: int,
) -> ModelBundle:
    """A loaded bundle of ``world`` (through the real loader, hashes and all)."""
    objects = MemoryObjects()
    files = synthetic.artifact_set(
        world, tenant_id=TENANT, version=version, index_kind=index_kind, index_params=params or None
    )
    pointer = objects.add_version(TENANT, version, files)
    return load_bundle(objects, TENANT, pointer)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def world() -> synthetic.SyntheticWorld:
    """5,000 items and 500 users."""
    return synthetic.make_world(5000, 500, seed=11)


@pytest.fixture(scope="session")
def bundle(world: synthetic.SyntheticWorld) -> ModelBundle:
    """The world behind an exact (flat) index."""
    return bundle_for(world)
