"""A model version's ``manifest.json`` (docs/artifacts.md): written last by the training job, read by
serving, by the workflow's EvaluateCandidate and by the next job's promotion gate.

Readers are lenient about sections they do not use (older versions lack some); the writer sets them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class FileDigest(BaseModel):
    """The sha256 and size of one file of the version (``files`` table)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    sha256: str | None = None
    size: int | None = Field(None, alias="bytes")

    @classmethod
    def of(cls, data: bytes) -> FileDigest:
        """The digest of ``data``."""
        return cls(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


class Manifest(BaseModel):
    """``manifest.json``; a reader checks ``files`` for each file it loads."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    tenant_id: str | None = None
    version: str | None = None
    model_type: str | None = None
    created_at: str | None = None
    config: dict[str, Any] | None = None
    #: The training data's window: ``start``, ``end`` (ISO 8601), ``days``, ``anchor``.
    data_window: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    baseline_metrics: dict[str, float] = Field(default_factory=dict)
    training: dict[str, Any] | None = None
    embedding_dim: int | None = None
    n_users: int | None = None
    n_items: int | None = None
    #: The FAISS index: ``type`` and ``params`` (``nprobe``, ``efSearch``).
    index: dict[str, Any] | None = None
    onnx: dict[str, Any] | None = None
    similarity: str | None = None
    #: The promotion gate's record (the job's verdict on the candidate against the active model).
    gate: dict[str, Any] | None = None
    files: dict[str, FileDigest] = Field(default_factory=dict)

    def with_files(self, files: Mapping[str, bytes]) -> Manifest:
        """This manifest with the digest of every file in ``files`` (by name, sorted)."""
        digests = {name: FileDigest.of(data) for name, data in sorted(files.items())}
        return self.model_copy(update={"files": digests})

    def document(self) -> dict[str, Any]:
        """The JSON-ready document as written: sections never set (e.g. no ``gate``) are left out."""
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)

    @property
    def trained_until(self) -> datetime | None:
        """See :func:`trained_until`."""
        return trained_until(self.model_dump(include={"data_window", "created_at"}))


def trained_until(manifest: Mapping[str, Any]) -> datetime | None:
    """The end of a version's training data: ``data_window.end``, else ``created_at`` (UTC).

    Serving folds in only a trained user's events after it; the gate judges the active model the same way.
    """
    window = manifest.get("data_window")
    candidates = [window.get("end")] if isinstance(window, Mapping) else []
    candidates.append(manifest.get("created_at"))
    for value in candidates:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None
