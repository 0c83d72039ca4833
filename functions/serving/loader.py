"""Build a ``ModelBundle`` from a version's artifact set (docs/artifacts.md), verifying every hash.

Nothing of a version is used before all its files are fetched, hash-checked and parsed; any failure
raises an ``ArtifactError`` and the caller keeps what it had.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from contract import layout
from contract.layout import ITEM_INDEX, LOOKUP, OPTIONAL_SERVING_FILES, POPULAR, SERVING_FILES, USER_TOWER
from contract.manifest import Manifest
from functions.common.errors import NotFoundError
from functions.common.observability import logger
from functions.serving.bundle import SPILL_MIN_BYTES, IdIndex, ItemCatalog, ModelBundle, UserHistory
from functions.serving.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactMissingError,
    ArtifactUnreadableError,
)
from functions.serving.popular import PopularLists
from functions.serving.search import IndexKind, VectorSearch
from functions.serving.store.storage import ObjectReader
from functions.serving.store.version_files import ModelDirectory, VersionFolder, default_directory
from functions.serving.tower import UserTower
from functions.training.store.model_registry import ActivePointer

_CENTROID_ITEMS = 50
_UNPACK_CHUNK = 1024 * 1024


def load_bundle(
    artifacts: ObjectReader,
    tenant_id: str,
    pointer: ActivePointer,
    *,
    threads: int = 1,
    directory: ModelDirectory | None = None,
) -> ModelBundle:
    """Fetch, verify and build the version ``pointer`` names; ``ArtifactError`` if it cannot be used.

    The files go to a fresh folder of ``directory`` (default: under the system's temporary folder) and
    are memory-mapped from there; the bundle owns the folder (``ModelBundle.release``).
    """
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
    folder = (directory or default_directory()).new_folder(tenant_id, pointer.version)
    try:
        _fetch_verified(artifacts, layout.folder_of(pointer.manifest_key), manifest, folder.path)
        return _build(tenant_id, pointer, manifest, folder, threads)
    except ArtifactError:
        folder.release()
        raise
    except Exception as exc:  # any parse failure of hash-checked bytes: numpy, faiss, onnxruntime, json
        folder.release()
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


def _fetch_verified(artifacts: ObjectReader, prefix: str, manifest: Manifest, into: Path) -> None:
    """Download every file serving needs into ``into``, each streamed and checked against its sha256."""
    expected = manifest.files
    names = [*SERVING_FILES, *(name for name in OPTIONAL_SERVING_FILES if name in expected)]
    for name in names:
        entry = expected.get(name)
        if entry is None or entry.sha256 is None:
            raise ArtifactIntegrityError(f"the manifest lists no sha256 for '{name}'")

    def fetch(name: str) -> str:
        try:
            return artifacts.download(prefix + name, into / name)
        except NotFoundError as exc:
            raise ArtifactMissingError(f"'{prefix}{name}' is missing") from exc

    # S3 latency dominates a cold load: fetch the files side by side.
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        digests = dict(zip(names, pool.map(fetch, names), strict=True))
    for name, digest in digests.items():
        entry = expected[name]
        if digest != str(entry.sha256).lower():
            raise ArtifactIntegrityError(
                f"'{prefix}{name}' has sha256 {digest}, the manifest says {entry.sha256}"
            )
        size = (into / name).stat().st_size
        if entry.size is not None and entry.size != size:
            raise ArtifactIntegrityError(f"'{prefix}{name}' has {size} bytes, the manifest says {entry.size}")


def _build(
    tenant_id: str, pointer: ActivePointer, manifest: Manifest, folder: VersionFolder, threads: int
) -> ModelBundle:
    files = folder.path
    index = _read_index(files / ITEM_INDEX)
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
    arrays = _mapped_arrays(files / LOOKUP, files / "lookup")
    catalog_ids = _str_array(arrays, "item_ids")
    catalog = ItemCatalog(
        catalog_ids,
        _str_array(arrays, "titles"),
        _str_array(arrays, "categories"),
        _str_array(arrays, "brands"),
        np.asarray(arrays["prices"], dtype=np.float64),
        ids=IdIndex.of(catalog_ids, spill=files / "lookup" / "item_ids", order=arrays.get("item_order")),
    )
    if catalog.size != search.size:
        raise ArtifactUnreadableError(f"lookup.npz has {catalog.size} items, items.faiss has {search.size}")
    users = _user_history(arrays, catalog.size, pointer.version, files / "lookup" / "user_ids")
    popular = PopularLists.parse(json.loads((files / POPULAR).read_bytes()))
    # From its path, so that onnxruntime maps the tables of a tower exported with external data
    # (USER_TOWER_DATA) instead of copying them; an older tower with the tables inside is read once.
    tower = UserTower(str(files / USER_TOWER), dim=dim, threads=threads)
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
        folder=folder,
    )


def _read_index(path: Path) -> Any:
    """The index, its vectors (and an HNSW graph) mapped from the file rather than copied."""
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


def _mapped_arrays(npz: Path, into: Path) -> dict[str, npt.NDArray[Any]]:
    """Each array of ``lookup.npz``, unpacked once into its own ``.npy`` under ``into`` and mapped
    from there (an ``.npz`` member cannot be mapped: it may be compressed); small arrays are read.

    The archive is removed once unpacked, so the version's folder holds each byte once.
    """
    into.mkdir()
    arrays: dict[str, npt.NDArray[Any]] = {}
    with zipfile.ZipFile(npz) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy") or "/" in member.filename:
                raise ArtifactUnreadableError(f"lookup.npz holds an unexpected member '{member.filename}'")
            target = into / member.filename
            with archive.open(member) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, _UNPACK_CHUNK)
            name = member.filename[: -len(".npy")]
            small = member.file_size < SPILL_MIN_BYTES
            arrays[name] = np.load(target, mmap_mode=None if small else "r", allow_pickle=False)
    npz.unlink()
    return arrays


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


def _user_history(
    arrays: dict[str, npt.NDArray[Any]], n_items: int, version: str, spill: Path
) -> UserHistory:
    user_ids = _str_array(arrays, "user_ids")
    ids = IdIndex.of(user_ids, spill=spill, order=arrays.get("user_order"))
    if "history_indptr" not in arrays:
        # Without the training histories serving still ranks, but cannot exclude purchases made before
        # training or name them in reasons: say so loudly rather than refuse the version.
        logger.warning("lookup.npz has no training histories", extra={"version": version})
        empty = np.empty(0, np.int32)
        return UserHistory(
            user_ids, np.zeros(user_ids.size + 1, np.int64), empty, empty.astype(np.int8), n_items, ids
        )
    return UserHistory(
        user_ids,
        np.asarray(arrays["history_indptr"], dtype=np.int64),
        np.asarray(arrays["history_items"], dtype=np.int32),
        np.asarray(arrays["history_types"], dtype=np.int8),
        n_items,
        ids,
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
