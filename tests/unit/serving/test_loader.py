"""Loading a version: hashes verified, contract checked, nothing used before everything is valid."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from embedrec_local import synthetic_models as synthetic
from embedrec_local.bench_serve_memory import in_memory_bundle
from functions.serving import bundle as bundle_module
from functions.serving import loader as loader_module
from functions.serving.bundle import ModelBundle
from functions.serving.domain import RecommendationQuery, UserEvent
from functions.serving.errors import ArtifactIntegrityError, ArtifactMissingError, ArtifactUnreadableError
from functions.serving.filters import ItemFilters
from functions.serving.loader import load_bundle
from functions.serving.ranking import rank_for_user, rank_similar
from functions.serving.store.version_files import ModelDirectory
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


# --- bounded memory: files in a local folder, mapped rather than copied -----------------------------


def _mapped(array: np.ndarray) -> bool:
    return isinstance(array, np.memmap) or isinstance(array.base, np.memmap)


def _answers(bundle: ModelBundle, users: list[str], item_ids: list[str]) -> list[object]:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    answers: list[object] = []
    filters = (ItemFilters(), ItemFilters(categories=("Laptops",)), ItemFilters(min_price=10, max_price=300))
    for user in users:
        events = [UserEvent(item_ids[0], "purchase", now - timedelta(hours=1), "k1")]
        for chosen in filters:
            query = RecommendationQuery(user, 20, chosen)
            answers.append(rank_for_user(bundle, query, events, now=now, half_life_hours=24).items)
    answers += [rank_similar(bundle, item_id, 10).items for item_id in item_ids]
    answers.append(bundle.catalog.lookup([*item_ids, "no_such_item"]).tolist())
    answers.append([bundle.users.user_index(user) for user in [*users, "no_such_user"]])
    return answers


@pytest.mark.parametrize("index_kind", ["flat_ip", "hnsw"])
def test_a_mapped_bundle_answers_exactly_like_one_built_in_memory(
    index_kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    world = synthetic.make_world(3000, 400, seed=21)
    files = synthetic.artifact_set(world, tenant_id=TENANT, version="lightgcn_v1", index_kind=index_kind)
    # Map every array however small (real versions map only arrays of a megabyte or more).
    monkeypatch.setattr(loader_module, "SPILL_MIN_BYTES", 0)
    monkeypatch.setattr(bundle_module, "SPILL_MIN_BYTES", 0)
    objects = MemoryObjects()
    pointer = objects.add_version(TENANT, "lightgcn_v1", files)

    mapped = load_bundle(objects, TENANT, pointer, directory=ModelDirectory(tmp_path))  # type: ignore[arg-type]
    reference = in_memory_bundle(files, TENANT, "lightgcn_v1")

    for array in (
        mapped.catalog.item_ids,
        mapped.catalog.titles,
        mapped.users.user_ids,
        mapped.users.items,
        mapped.users.ids.sorted_ids,
        mapped.catalog.ids.order,
    ):
        assert _mapped(array)
    users = [f"user_{n:04d}" for n in (1, 7, 42, 399)]
    item_ids = [str(world.item_ids[n]) for n in (0, 17, 2999)]
    assert _answers(mapped, users, item_ids) == _answers(reference, users, item_ids)


def test_a_loaded_version_keeps_its_unpacked_files_until_released_and_still_answers_after(
    files: dict[str, bytes], tmp_path: Path
) -> None:
    directory = ModelDirectory(tmp_path)
    objects = MemoryObjects()
    pointer = objects.add_version(TENANT, "lightgcn_v1", files)
    bundle = load_bundle(objects, TENANT, pointer, directory=directory)  # type: ignore[arg-type]
    (folder,) = directory.folders()
    before = _answers(bundle, ["user_0001"], [str(bundle.catalog.item_ids[3])])

    names = sorted(path.name for path in folder.iterdir())
    assert "lookup.npz" not in names  # unpacked into lookup/, then removed: each byte once
    assert {"user_tower.onnx", "items.faiss", "popular.json", "lookup"} <= set(names)
    assert bundle.footprint_bytes() == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    bundle.release()

    assert directory.folders() == [] and bundle.released
    assert _answers(bundle, ["user_0001"], [str(bundle.catalog.item_ids[3])]) == before


def test_a_version_that_fails_to_load_leaves_no_files_behind(files: dict[str, bytes], tmp_path: Path) -> None:
    directory = ModelDirectory(tmp_path)
    tampered = bytearray(files["lookup.npz"])
    tampered[len(tampered) // 2] ^= 0xFF
    objects = MemoryObjects()
    pointer = objects.add_version(TENANT, "lightgcn_v1", {**files, "lookup.npz": bytes(tampered)})

    with pytest.raises(ArtifactIntegrityError):
        load_bundle(objects, TENANT, pointer, directory=directory)  # type: ignore[arg-type]

    assert directory.folders() == []


def test_a_new_process_removes_the_folders_of_processes_that_are_gone(tmp_path: Path) -> None:
    gone = tmp_path / "999999999"  # above any pid_max: no such process
    (gone / "tenant.v1.x").mkdir(parents=True)
    alive = tmp_path / "1"  # init, always there
    alive.mkdir()

    directory = ModelDirectory(tmp_path)

    assert not gone.exists() and alive.exists() and directory.path.is_dir()


def _mapped_files() -> set[str]:
    with open("/proc/self/maps") as maps:
        return {line.split(maxsplit=5)[-1].strip() for line in maps if "/" in line}


def test_a_tower_with_external_tables_is_hash_checked_and_mapped_not_copied(
    small_world: synthetic.SyntheticWorld, files: dict[str, bytes], tmp_path: Path
) -> None:
    external = synthetic.artifact_set(
        small_world, tenant_id=TENANT, version="lightgcn_v1", external_tower=True
    )
    assert "user_tower.onnx.data" in json.loads(external["manifest.json"])["files"]
    directory = ModelDirectory(tmp_path)
    objects = MemoryObjects()
    pointer = objects.add_version(TENANT, "lightgcn_v1", external)

    bundle = load_bundle(objects, TENANT, pointer, directory=directory)  # type: ignore[arg-type]

    data_file = str(directory.folders()[0] / "user_tower.onnx.data")
    assert data_file in _mapped_files()  # onnxruntime maps the tables rather than reading them in
    item_ids = [str(small_world.item_ids[n]) for n in (0, 5)]
    users = ["user_0001", "user_0030"]
    assert _answers(bundle, users, item_ids) == _answers(_load(files), users, item_ids)

    tampered = bytearray(external["user_tower.onnx.data"])
    tampered[0] ^= 0xFF
    with pytest.raises(ArtifactIntegrityError, match=r"user_tower\.onnx\.data' has sha256"):
        _load(external, **{"user_tower.onnx.data": bytes(tampered)})


def _with_lookup(
    files: dict[str, bytes], change: Callable[[dict[str, np.ndarray]], None]
) -> dict[str, bytes]:
    with np.load(io.BytesIO(files["lookup.npz"]), allow_pickle=False) as lookup:
        arrays = {name: lookup[name] for name in lookup.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    changed = {**files, "lookup.npz": buffer.getvalue()}
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["lookup.npz"] = {
        "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "bytes": len(buffer.getvalue()),
    }
    return {**changed, "manifest.json": json.dumps(manifest).encode()}


@pytest.mark.parametrize("spill", [False, True])
def test_exported_id_orders_are_used_and_a_version_without_or_with_wrong_ones_is_sorted_at_load(
    spill: bool,
    small_world: synthetic.SyntheticWorld,
    files: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if spill:
        monkeypatch.setattr(bundle_module, "SPILL_MIN_BYTES", 0)
    shuffled = np.random.default_rng(3).permutation(small_world.item_ids.size)

    def without(arrays: dict[str, np.ndarray]) -> None:
        del arrays["item_order"], arrays["user_order"]

    def wrong(arrays: dict[str, np.ndarray]) -> None:
        arrays["item_order"] = shuffled
        arrays["user_order"] = np.zeros_like(arrays["user_order"])  # every user at position 0

    item_ids = [str(small_world.item_ids[n]) for n in (0, 11, 299)]
    users = ["user_0001", "user_0040"]
    expected = _answers(_load(files), users, item_ids)
    assert _answers(_load(_with_lookup(files, without)), users, item_ids) == expected
    assert _answers(_load(_with_lookup(files, wrong)), users, item_ids) == expected
