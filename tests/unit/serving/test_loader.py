"""Loading a version: hashes verified, contract checked, nothing used before everything is valid."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedrec_local import synthetic_models as synthetic
from functions.serving.errors import ArtifactIntegrityError, ArtifactMissingError, ArtifactUnreadableError
from functions.serving.loader import load_bundle
from functions.training.store.model_registry import ActivePointer
from tests.unit.serving.conftest import TENANT, MemoryObjects


@pytest.fixture(scope="module")
def small_world() -> synthetic.SyntheticWorld:
    return synthetic.make_world(300, 40, seed=5)


@pytest.fixture(scope="module")
def files(small_world: synthetic.SyntheticWorld) -> dict[str, bytes]:
    return synthetic.artifact_set(small_world, tenant_id=TENANT, version="lightgcn_v1")


def _load(files: dict[str, bytes], tenant: str = TENANT, **replace: bytes):
    objects = MemoryObjects()
    pointer = objects.add_version(TENANT, "lightgcn_v1", {**files, **replace})
    return load_bundle(objects, tenant, pointer)  # type: ignore[arg-type]


def test_a_valid_version_loads_with_its_index_params(files: dict[str, bytes]) -> None:
    bundle = _load(files)

    assert (bundle.version, bundle.model_type, bundle.search.kind, bundle.search.size) == (
        "lightgcn_v1",
        "lightgcn",
        "flat_ip",
        300,
    )
    assert bundle.trained_until is not None and bundle.trained_until.year == 2025


def test_ivf_and_hnsw_params_come_from_the_manifest(small_world: synthetic.SyntheticWorld) -> None:
    for kind, params in (("ivf", {"nlist": 8, "nprobe": 3}), ("hnsw", {"M": 8, "efSearch": 77})):
        files = synthetic.artifact_set(
            small_world, tenant_id=TENANT, version="lightgcn_v1", index_kind=kind, index_params=params
        )
        search = _load(files).search
        assert search.kind == kind
        assert (search.nprobe, search.ef_search) == ((3, None) if kind == "ivf" else (None, 77))


def test_a_file_that_differs_from_its_hash_is_refused(files: dict[str, bytes]) -> None:
    tampered = bytearray(files["items.faiss"])
    tampered[-1] ^= 0xFF

    with pytest.raises(ArtifactIntegrityError, match=r"items\.faiss' has sha256"):
        _load(files, **{"items.faiss": bytes(tampered)})


def test_a_missing_file_is_reported_as_missing(files: dict[str, bytes]) -> None:
    objects = MemoryObjects()
    pointer = objects.add_version(
        TENANT, "lightgcn_v1", {k: v for k, v in files.items() if k != "lookup.npz"}
    )

    with pytest.raises(ArtifactMissingError, match="lookup.npz"):
        load_bundle(objects, TENANT, pointer)  # type: ignore[arg-type]


def test_a_missing_manifest_means_the_version_does_not_exist(files: dict[str, bytes]) -> None:
    with pytest.raises(ArtifactMissingError, match="manifest"):
        load_bundle(MemoryObjects(), TENANT, ActivePointer("v9", f"models/{TENANT}/v9/manifest.json", 1))  # type: ignore[arg-type]


def test_a_pointer_to_another_tenants_artifacts_is_refused(files: dict[str, bytes]) -> None:
    objects = MemoryObjects()
    pointer = objects.add_version("tenant_other", "lightgcn_v1", files)

    with pytest.raises(ArtifactIntegrityError, match="outside this tenant"):
        load_bundle(objects, TENANT, pointer)  # type: ignore[arg-type]


def test_a_manifest_without_a_hash_for_a_needed_file_is_refused(files: dict[str, bytes]) -> None:
    manifest = json.loads(files["manifest.json"])
    del manifest["files"]["user_tower.onnx"]

    with pytest.raises(ArtifactIntegrityError, match="no sha256 for 'user_tower.onnx'"):
        _load(files, **{"manifest.json": json.dumps(manifest).encode()})


def test_hash_valid_but_unparseable_content_is_unreadable(small_world: synthetic.SyntheticWorld) -> None:
    files = synthetic.artifact_set(small_world, tenant_id=TENANT, version="lightgcn_v1")
    files["items.faiss"] = b"not a faiss index"
    manifest = synthetic.manifest(
        tenant_id=TENANT,
        version="lightgcn_v1",
        world=small_world,
        files={k: v for k, v in files.items() if k != "manifest.json"},
        index={"type": "flat_ip", "params": {}},
    )

    with pytest.raises(ArtifactUnreadableError):
        _load(files, **{"manifest.json": json.dumps(manifest).encode()})


def test_lookup_without_training_histories_still_loads(small_world: synthetic.SyntheticWorld) -> None:
    files = synthetic.artifact_set(small_world, tenant_id=TENANT, version="lightgcn_v1")
    import io

    buffer = io.BytesIO()
    np.savez(
        buffer,
        item_ids=small_world.item_ids,
        titles=small_world.titles,
        categories=small_world.categories,
        brands=small_world.brands,
        prices=small_world.prices,
        user_ids=small_world.user_ids,
    )
    files["lookup.npz"] = buffer.getvalue()
    manifest = synthetic.manifest(
        tenant_id=TENANT,
        version="lightgcn_v1",
        world=small_world,
        files={k: v for k, v in files.items() if k != "manifest.json"},
        index={"type": "flat_ip", "params": {}},
    )

    bundle = _load(files, **{"manifest.json": json.dumps(manifest).encode()})

    assert bundle.users.history(0)[0].size == 0
