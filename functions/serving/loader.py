"""Build a ``ModelBundle`` from a version's artifact set (docs/artifacts.md), verifying every hash.

Nothing of a version is used before all its files are fetched, hash-checked and parsed; any failure
raises an ``ArtifactError`` and the caller keeps what it had.
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from contract import layout
from contract.layout import ITEM_INDEX, LOOKUP, POPULAR, SERVING_FILES, USER_TOWER
from contract.manifest import Manifest
from functions.common.errors import NotFoundError
from functions.common.observability import logger
from functions.serving.bundle import ItemCatalog, ModelBundle, UserHistory
from functions.serving.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactMissingError,
    ArtifactUnreadableError,
)
from functions.serving.popular import PopularLists
from functions.serving.search import IndexKind, VectorSearch
from functions.serving.store.storage import ObjectReader
from functions.serving.tower import UserTower
from functions.training.store.model_registry import ActivePointer

_CENTROID_ITEMS = 50


def load_bundle(
    artifacts: ObjectReader, tenant_id: str, pointer: ActivePointer, *, threads: int = 1
) -> ModelBundle:
    """Fetch, verify and build the version ``pointer`` names; ``ArtifactError`` if it cannot be used."""
    if not pointer.manifest_key.startswith(layout.tenant_models_prefix(tenant_id)):
        # A pointer can only name this tenant's artifacts, whatever was written into the registry.
        raise ArtifactIntegrityError(f"manifest key '{pointer.manifest_key}' is outside this tenant's models")
    manifest = _manifest(artifacts, pointer)
    if (manifest.tenant_id or tenant_id) != tenant_id:
        raise ArtifactIntegrityError("the manifest belongs to another tenant")
    if (manifest.version or pointer.version) != pointer.version:
        raise ArtifactIntegrityError(
            f"the manifest is for version '{manifest.version}', the pointer says '{pointer.version}'"
        )
    folder = layout.folder_of(pointer.manifest_key)
    files = _fetch_verified(artifacts, folder, manifest)
    try:
        return _build(tenant_id, pointer, manifest, files, threads)
    except ArtifactError:
        raise
    except Exception as exc:  # any parse failure of hash-checked bytes: numpy, faiss, onnxruntime, json
        raise ArtifactUnreadableError(f"version '{pointer.version}' cannot be read: {exc}") from exc


def _manifest(artifacts: ObjectReader, pointer: ActivePointer) -> Manifest:
    try:
        document = artifacts.get_json(pointer.manifest_key)
    except NotFoundError as exc:
        raise ArtifactMissingError(f"manifest '{pointer.manifest_key}' is missing") from exc
    except ValueError as exc:
        raise ArtifactUnreadableError(f"manifest '{pointer.manifest_key}' is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise ArtifactUnreadableError(f"manifest '{pointer.manifest_key}' has no 'files' table")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise ArtifactUnreadableError(f"manifest '{pointer.manifest_key}' is malformed: {exc}") from exc


def _fetch_verified(artifacts: ObjectReader, folder: str, manifest: Manifest) -> dict[str, bytes]:
    expected = manifest.files
    for name in SERVING_FILES:
        entry = expected.get(name)
        if entry is None or entry.sha256 is None:
            raise ArtifactIntegrityError(f"the manifest lists no sha256 for '{name}'")

    def fetch(name: str) -> bytes:
        try:
            return artifacts.get_bytes(folder + name)
        except NotFoundError as exc:
            raise ArtifactMissingError(f"'{folder}{name}' is missing") from exc

    # S3 latency dominates a cold load: fetch the files side by side.
    with ThreadPoolExecutor(max_workers=len(SERVING_FILES)) as pool:
        contents = dict(zip(SERVING_FILES, pool.map(fetch, SERVING_FILES), strict=True))
    for name, data in contents.items():
        entry = expected[name]
        digest = hashlib.sha256(data).hexdigest()
        if digest != str(entry.sha256).lower():
            raise ArtifactIntegrityError(
                f"'{folder}{name}' has sha256 {digest}, the manifest says {entry.sha256}"
            )
        size = entry.size
        if size is not None and size != len(data):
            raise ArtifactIntegrityError(f"'{folder}{name}' has {len(data)} bytes, the manifest says {size}")
    return contents


def _build(
    tenant_id: str, pointer: ActivePointer, manifest: Manifest, files: dict[str, bytes], threads: int
) -> ModelBundle:
    index = faiss.deserialize_index(np.frombuffer(files[ITEM_INDEX], dtype=np.uint8))
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ArtifactUnreadableError("items.faiss must use inner product")
    dim = manifest.embedding_dim if manifest.embedding_dim is not None else int(index.d)
    if dim != index.d:
        raise ArtifactUnreadableError(f"items.faiss has dimension {index.d}, the manifest says {dim}")
    params = (manifest.index or {}).get("params", {})
    search = VectorSearch(
        index,
        _index_kind(index),
        nprobe=_int_param(params, "nprobe"),
        ef_search=_int_param(params, "efSearch", "ef_search"),
    )
    with np.load(io.BytesIO(files[LOOKUP]), allow_pickle=False) as lookup:
        arrays = {name: lookup[name] for name in lookup.files}
    catalog = ItemCatalog(
        _str_array(arrays, "item_ids"),
        _str_array(arrays, "titles"),
        _str_array(arrays, "categories"),
        _str_array(arrays, "brands"),
        np.asarray(arrays["prices"], dtype=np.float64),
    )
    if catalog.size != search.size:
        raise ArtifactUnreadableError(f"lookup.npz has {catalog.size} items, items.faiss has {search.size}")
    users = _user_history(arrays, catalog.size, pointer.version)
    popular = PopularLists.parse(json.loads(files[POPULAR]))
    tower = UserTower(files[USER_TOWER], dim=dim, threads=threads)
    return ModelBundle(
        tenant_id=tenant_id,
        version=pointer.version,
        model_type=str(manifest.model_type or pointer.version.rsplit("_v", 1)[0]),
        manifest_key=pointer.manifest_key,
        trained_until=manifest.trained_until,
        catalog=catalog,
        users=users,
        popular=popular,
        search=search,
        tower=tower,
        popular_centroid=_popular_centroid(search, catalog, popular),
    )


def _popular_centroid(
    search: VectorSearch, catalog: ItemCatalog, popular: PopularLists
) -> npt.NDArray[np.float32]:
    if search.size == 0:
        return np.zeros(search.dim, dtype=np.float32)
    best = catalog.indices_of([entry.item_id for entry in popular.overall[:_CENTROID_ITEMS]])
    if best.size == 0:
        step = max(1, search.size // _CENTROID_ITEMS)  # no popularity known: a spread of the catalogue
        best = np.arange(0, search.size, step, dtype=np.int64)[:_CENTROID_ITEMS]
    return np.asarray(search.vectors[best].mean(axis=0), dtype=np.float32)


def _user_history(arrays: dict[str, npt.NDArray[Any]], n_items: int, version: str) -> UserHistory:
    user_ids = _str_array(arrays, "user_ids")
    if "history_indptr" not in arrays:
        # Without the training histories serving still ranks, but cannot exclude purchases made before
        # training or name them in reasons: say so loudly rather than refuse the version.
        logger.warning("lookup.npz has no training histories", extra={"version": version})
        empty = np.empty(0, np.int32)
        return UserHistory(
            user_ids, np.zeros(user_ids.size + 1, np.int64), empty, empty.astype(np.int8), n_items
        )
    return UserHistory(
        user_ids,
        np.asarray(arrays["history_indptr"], dtype=np.int64),
        np.asarray(arrays["history_items"], dtype=np.int32),
        np.asarray(arrays["history_types"], dtype=np.int8),
        n_items,
    )


def _index_kind(index: Any) -> IndexKind:
    """What the index is, from the object itself (the manifest's ``index.type`` is informative)."""
    if isinstance(index, faiss.IndexFlat):
        return "flat_ip"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    try:
        faiss.extract_index_ivf(index)
    except RuntimeError as exc:
        raise ArtifactUnreadableError(f"unsupported index type {type(index).__name__}") from exc
    return "ivf"


def _int_param(params: Any, *names: str) -> int | None:
    if not isinstance(params, dict):
        return None
    for name in names:
        value = params.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _str_array(arrays: dict[str, npt.NDArray[Any]], name: str) -> npt.NDArray[np.str_]:
    if name not in arrays:
        raise ArtifactUnreadableError(f"lookup.npz has no '{name}' array")
    return np.asarray(arrays[name]).astype(np.str_, copy=False)
