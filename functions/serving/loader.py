"""Build a ``ModelBundle`` from a version's artifact set (docs/artifacts.md), verifying every hash.

Nothing of a version is used before all its files are fetched, hash-checked and parsed; any failure
raises an ``ArtifactError`` and the caller keeps what it had.
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

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

USER_TOWER = "user_tower.onnx"
ITEM_INDEX = "items.faiss"
LOOKUP = "lookup.npz"
POPULAR = "popular.json"
SERVING_FILES = (USER_TOWER, ITEM_INDEX, LOOKUP, POPULAR)
_CENTROID_ITEMS = 50


def model_prefix(tenant_id: str) -> str:
    """Where a tenant's versions live in the artifacts bucket."""
    return f"models/{tenant_id}/"


def load_bundle(
    artifacts: ObjectReader, tenant_id: str, pointer: ActivePointer, *, threads: int = 1
) -> ModelBundle:
    """Fetch, verify and build the version ``pointer`` names; ``ArtifactError`` if it cannot be used."""
    if not pointer.manifest_key.startswith(model_prefix(tenant_id)):
        # A pointer can only name this tenant's artifacts, whatever was written into the registry.
        raise ArtifactIntegrityError(f"manifest key '{pointer.manifest_key}' is outside this tenant's models")
    manifest = _manifest(artifacts, pointer)
    if manifest.get("tenant_id", tenant_id) != tenant_id:
        raise ArtifactIntegrityError("the manifest belongs to another tenant")
    if manifest.get("version", pointer.version) != pointer.version:
        raise ArtifactIntegrityError(
            f"the manifest is for version '{manifest.get('version')}', the pointer says '{pointer.version}'"
        )
    folder = pointer.manifest_key.rsplit("/", 1)[0] + "/"
    files = _fetch_verified(artifacts, folder, manifest)
    try:
        return _build(tenant_id, pointer, manifest, files, threads)
    except ArtifactError:
        raise
    except Exception as exc:  # any parse failure of hash-checked bytes: numpy, faiss, onnxruntime, json
        raise ArtifactUnreadableError(f"version '{pointer.version}' cannot be read: {exc}") from exc


def _manifest(artifacts: ObjectReader, pointer: ActivePointer) -> dict[str, Any]:
    try:
        manifest = artifacts.get_json(pointer.manifest_key)
    except NotFoundError as exc:
        raise ArtifactMissingError(f"manifest '{pointer.manifest_key}' is missing") from exc
    except ValueError as exc:
        raise ArtifactUnreadableError(f"manifest '{pointer.manifest_key}' is not JSON") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactUnreadableError(f"manifest '{pointer.manifest_key}' has no 'files' table")
    return manifest


def _fetch_verified(artifacts: ObjectReader, folder: str, manifest: dict[str, Any]) -> dict[str, bytes]:
    expected: dict[str, dict[str, Any]] = manifest["files"]
    for name in SERVING_FILES:
        entry = expected.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
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
        if digest != entry["sha256"].lower():
            raise ArtifactIntegrityError(
                f"'{folder}{name}' has sha256 {digest}, the manifest says {entry['sha256']}"
            )
        size = entry.get("bytes")
        if size is not None and int(size) != len(data):
            raise ArtifactIntegrityError(f"'{folder}{name}' has {len(data)} bytes, the manifest says {size}")
    return contents


def _build(
    tenant_id: str, pointer: ActivePointer, manifest: dict[str, Any], files: dict[str, bytes], threads: int
) -> ModelBundle:
    index = faiss.deserialize_index(np.frombuffer(files[ITEM_INDEX], dtype=np.uint8))
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ArtifactUnreadableError("items.faiss must use inner product")
    dim = int(manifest.get("embedding_dim", index.d))
    if dim != index.d:
        raise ArtifactUnreadableError(f"items.faiss has dimension {index.d}, the manifest says {dim}")
    params = manifest.get("index", {}).get("params", {}) if isinstance(manifest.get("index"), dict) else {}
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
        model_type=str(manifest.get("model_type") or pointer.version.rsplit("_v", 1)[0]),
        manifest_key=pointer.manifest_key,
        trained_until=_trained_until(manifest),
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


def _trained_until(manifest: dict[str, Any]) -> datetime | None:
    """The end of the training data: events after it are folded in (``data_window.end``, else created_at)."""
    window = manifest.get("data_window")
    candidates = [window.get("end")] if isinstance(window, dict) else []
    candidates.append(manifest.get("created_at"))
    for value in candidates:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None
