"""The active model read from its own published artifacts, hash-checked against its manifest.

``manifest.json``, ``user_tower.onnx``, ``items.faiss`` and ``lookup.npz`` make a
:class:`~training_jobs.gate_scoring.ServedModel` that the gate measures like the candidate. The end of
its training data (:func:`trained_until_ms`) bounds the gate's leak guard.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.layout import ITEM_INDEX, LOOKUP, USER_TOWER, USER_TOWER_DATA
from contract.manifest import trained_until
from training_jobs.gate_scoring import FloatMatrix, ServedModel
from training_jobs.storage import S3ObjectStore
from training_jobs.tower_files import join_external_data


def trained_until_ms(manifest: dict[str, Any]) -> int | None:
    """The end of a version's training data as serving reads it (``contract.manifest.trained_until``)."""
    moment = trained_until(manifest)
    return int(round(moment.timestamp() * 1000)) if moment is not None else None


class ActiveModelUnreadable(Exception):
    """The active model's artifacts cannot be read or do not match its manifest."""


_ACTIVE_FILES = (USER_TOWER, ITEM_INDEX, LOOKUP)


def _index_vectors(data: bytes) -> FloatMatrix:
    import faiss

    index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    try:
        vectors = index.reconstruct_n(0, index.ntotal)
    except RuntimeError:  # an IVF index reconstructs through its direct map
        faiss.extract_index_ivf(index).make_direct_map()
        vectors = index.reconstruct_n(0, index.ntotal)
    return np.asarray(vectors, dtype=np.float32).reshape(index.ntotal, index.d)


@dataclass(frozen=True)
class ActiveModel:
    """The active version, read from its artifacts."""

    version: str
    manifest: dict[str, Any]
    model: ServedModel

    @property
    def trained_until_ms(self) -> int | None:
        """End of the active model's data (the leak guard's bound)."""
        return self.model.trained_until_ms


def load_active_model(store: S3ObjectStore, bucket: str, manifest_key: str) -> ActiveModel:
    """Read the active version's manifest and serving files; :class:`ActiveModelUnreadable` if it cannot."""
    prefix = manifest_key.rsplit("/", 1)[0] + "/"
    try:
        manifest = json.loads(store.get_bytes(bucket, manifest_key))
        if not isinstance(manifest, dict):
            raise ActiveModelUnreadable(f"{manifest_key} is not a JSON object")
        expected = manifest.get("files", {})
        files: dict[str, bytes] = {}
        # Versions exported with the tower's tables beside it (USER_TOWER_DATA) list that file too.
        optional = (USER_TOWER_DATA,) if isinstance(expected, dict) and USER_TOWER_DATA in expected else ()
        for name in (*_ACTIVE_FILES, *optional):
            data = store.get_bytes(bucket, prefix + name)
            entry = expected.get(name) if isinstance(expected, dict) else None
            if isinstance(entry, dict) and entry.get("sha256") != hashlib.sha256(data).hexdigest():
                raise ActiveModelUnreadable(f"{prefix}{name} does not match its sha256 in the manifest")
            files[name] = data
        with np.load(io.BytesIO(files[LOOKUP]), allow_pickle=False) as lookup:
            item_ids = np.asarray(lookup["item_ids"]).astype(str)
            user_ids = np.asarray(lookup["user_ids"]).astype(str)
        tower = files[USER_TOWER]
        if USER_TOWER_DATA in files:
            tower = join_external_data(tower, files[USER_TOWER_DATA])
        model = ServedModel(
            user_tower=tower,
            item_ids=item_ids,
            item_vectors=_index_vectors(files[ITEM_INDEX]),
            user_ids=user_ids,
            trained_until_ms=trained_until_ms(manifest),
        )
    except ActiveModelUnreadable:
        raise
    except Exception as exc:  # missing file, bad JSON/npz/ONNX/index: the active cannot be measured
        raise ActiveModelUnreadable(f"{type(exc).__name__}: {exc}") from exc
    version = str(manifest.get("version") or prefix.rstrip("/").rsplit("/", 1)[-1])
    return ActiveModel(version=version, manifest=manifest, model=model)
