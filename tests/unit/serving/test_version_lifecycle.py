"""One version per tenant after a refresh: in memory, in the catalogue's rebased copies and in /tmp."""

from __future__ import annotations

import gc
import hashlib
import weakref
from functools import partial
from pathlib import Path

from contract import catalog_view, layout
from embedrec_local import synthetic_models as synthetic
from functions.serving.catalog import CatalogViews
from functions.serving.loader import load_bundle
from functions.serving.store.model_store import ModelStore
from functions.serving.store.version_files import ModelDirectory
from functions.training.store.model_registry import ActivePointer
from tests.unit.serving.conftest import TENANT, MemoryObjects


class ViewObjects(MemoryObjects):
    """``MemoryObjects`` that also answers conditional GETs (the catalogue view's ETag check)."""

    def get_if_changed(self, key: str, etag: str | None) -> tuple[bytes, str] | None:
        data = self.get_bytes(key)
        tag = hashlib.md5(data).hexdigest()
        return None if tag == etag else (data, tag)


class Registry:
    def __init__(self) -> None:
        self.pointer: ActivePointer | None = None

    def active(self, _tenant_id: str) -> ActivePointer | None:
        return self.pointer


def test_after_a_refresh_only_the_new_version_is_held_and_on_disk(tmp_path: Path) -> None:
    # Given a tenant serving v1, rebased on its current catalogue, with v2 published
    world = synthetic.make_world(400, 60, seed=3)
    artifacts, data = MemoryObjects(), ViewObjects()
    for version in ("lightgcn_v1", "lightgcn_v2"):
        artifacts.add_version(
            TENANT, version, synthetic.artifact_set(world, tenant_id=TENANT, version=version)
        )
    ids = [str(item) for item in world.item_ids]
    data.objects[layout.catalog_view_key(TENANT)] = catalog_view.encode(
        catalog_view.CatalogColumns(
            item_id=ids,
            title=[f"Title {item}" for item in ids],
            category=["Laptops"] * len(ids),
            brand=["b"] * len(ids),
            price=[10.0] * len(ids),
            available=[True] * len(ids),
            popularity=[1.0] * len(ids),
        )
    )
    directory = ModelDirectory(tmp_path)
    registry, now = Registry(), [0.0]
    store = ModelStore(
        registry,  # type: ignore[arg-type]
        artifacts,  # type: ignore[arg-type]
        data,  # type: ignore[arg-type]
        refresh_seconds=30,
        max_tenants=4,
        loader=partial(load_bundle, directory=directory),
        clock=lambda: now[0],
    )
    views = CatalogViews(data, check_seconds=10, max_tenants=4, clock=lambda: now[0])  # type: ignore[arg-type]
    registry.pointer = ActivePointer("lightgcn_v1", layout.manifest_key(TENANT, "lightgcn_v1"), 1)
    first = views.current_model(TENANT, store.get(TENANT))
    assert first.bundle is not None and first.bundle.catalog.titles[0] == f"Title {ids[0]}"
    old = weakref.ref(first.bundle)
    old_source = store.get(TENANT).bundle
    assert old_source is not None
    old_folder = old_source.folder
    del first, old_source

    # When the pointer moves to v2 and the next due request refreshes and rebases
    registry.pointer = ActivePointer("lightgcn_v2", layout.manifest_key(TENANT, "lightgcn_v2"), 2)
    now[0] = 31.0
    second = views.current_model(TENANT, store.get(TENANT))
    gc.collect()

    # Then v1 is gone from memory (no cache still holds it) and from disk; v2 answers
    assert second.version == "lightgcn_v2"
    assert old() is None
    assert old_folder is not None and not old_folder.path.exists()
    assert [path.name.split(".")[1] for path in directory.folders()] == ["lightgcn_v2"]
