"""Where the deployables meet in S3: key builders and file names (docs/artifacts.md).

- Artifacts bucket: ``models/{tenant}/{version}/`` holds one model version's files; ``manifest.json``
  is written last (a version exists for readers only once it does) and ``decision.json`` beside it
  records the promotion decision.
- Data bucket: ``catalog/{tenant}/popular.json`` (popular items of the ingested data, before any
  model) and ``catalog/{tenant}/serving.json.gz`` (the serving view of the catalogue, ``catalog_view``);
  a job's dataset snapshot is ``interactions.parquet`` + ``items.parquet`` under the job's prefix, and
  the training job's checkpoints are under ``checkpoints/`` beside them.
"""

from __future__ import annotations

from typing import Final

MODELS_PREFIX: Final = "models/"

USER_TOWER: Final = "user_tower.onnx"
#: The user tower's tables as ONNX external data (beside ``user_tower.onnx``, which names it), so that
#: serving maps them instead of holding them in memory. Versions exported before it have the tables
#: inside ``user_tower.onnx`` and no such file; serving reads both.
USER_TOWER_DATA: Final = "user_tower.onnx.data"
ITEM_INDEX: Final = "items.faiss"
ITEMS_TABLE: Final = "items.parquet"
POPULAR: Final = "popular.json"
LOOKUP: Final = "lookup.npz"
MANIFEST: Final = "manifest.json"
DECISION: Final = "decision.json"
#: The files serving loads (each hash-checked against the manifest).
SERVING_FILES: Final = (USER_TOWER, ITEM_INDEX, LOOKUP, POPULAR)
#: Files serving loads (hash-checked) when the manifest lists them.
OPTIONAL_SERVING_FILES: Final = (USER_TOWER_DATA,)

#: A dataset snapshot's files (PrepareDataset writes them, the training job reads them).
SNAPSHOT_INTERACTIONS: Final = "interactions.parquet"
SNAPSHOT_ITEMS: Final = "items.parquet"
#: A training job's checkpoints, under its snapshot's prefix (a retried Batch attempt resumes from them;
#: they expire with the snapshot).
CHECKPOINTS_FOLDER: Final = "checkpoints/"
#: Parquet schema metadata key of the snapshot's window (JSON of the window's start, end, days, anchor).
WINDOW_METADATA_KEY: Final = b"embedrec.window"


def tenant_models_prefix(tenant_id: str) -> str:
    """Where a tenant's versions live in the artifacts bucket (ends with ``/``)."""
    return f"{MODELS_PREFIX}{tenant_id}/"


def version_prefix(tenant_id: str, version: str) -> str:
    """Key prefix of one model version (ends with ``/``)."""
    return f"{tenant_models_prefix(tenant_id)}{version}/"


def artifact_key(tenant_id: str, version: str, name: str) -> str:
    """Key of one file of a model version."""
    return version_prefix(tenant_id, version) + name


def manifest_key(tenant_id: str, version: str) -> str:
    """Key of a version's ``manifest.json``."""
    return artifact_key(tenant_id, version, MANIFEST)


def decision_key(tenant_id: str, version: str) -> str:
    """Key of a version's ``decision.json``."""
    return artifact_key(tenant_id, version, DECISION)


def folder_of(key: str) -> str:
    """The prefix (ending with ``/``) of the folder a key is in: a manifest key's version prefix."""
    return key.rsplit("/", 1)[0] + "/"


def popular_key(tenant_id: str) -> str:
    """Popular items of the tenant's ingested data, for serving when no model is trained yet."""
    return f"catalog/{tenant_id}/{POPULAR}"


def catalog_view_key(tenant_id: str) -> str:
    """Where the tenant's serving view of the catalogue lives in the data bucket."""
    return f"catalog/{tenant_id}/serving.json.gz"
