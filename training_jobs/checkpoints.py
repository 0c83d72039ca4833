"""Checkpoints of one training job, so an attempt that AWS Batch retries after a spot reclaim resumes.

The job definition retries the job when its spot instance is reclaimed; the new attempt runs with the
same arguments, so it finds what the earlier one left under the snapshot's prefix
(``{dataset prefix}checkpoints/``, :data:`contract.layout.CHECKPOINTS_FOLDER`):

- ``candidate-NNN.json``: planned candidate NNN's finished results (each variant's metrics, seconds and
  device, or its failure) and the fitting seconds it took;
- ``best-NNN.json`` + ``best-NNN.npz``: a candidate that became the best so far: its spec, metrics,
  training record and export tables (written before its ``candidate-NNN.json``, so a finished
  candidate's model is never missing);
- ``epochs-NNN.pt`` (``epochs-refit.pt`` for the refit): a gradient-trained candidate's state at its
  last saved epoch boundary (weights, optimiser moments, RNG states, best epoch so far;
  :func:`training_jobs.trainer.train_model`), at most every :data:`EPOCH_CHECKPOINT_EVERY_S` seconds, so
  a reclaim loses at most that much of its training.

Every record carries the fit graph's shape (users, items, pairs); a record of another shape (another
snapshot or config) is ignored. A retried attempt lists the prefix once and skips the candidates it
finds. Writing a checkpoint is best effort: a failed write is logged and the job goes on (it only loses
the resume). Tables and training states (gigabytes at 2M users) go through a temporary file and a
multipart upload, so a save never holds a second copy of them in memory. The objects expire with the
snapshot (the data bucket's ``datasets/`` rule).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training_jobs.candidate_fit import Fitted
from training_jobs.candidate_plan import CandidateSpec
from training_jobs.candidates import CandidateResult, FinishedCandidate
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph
from training_jobs.errors import ArtifactError, DatasetError
from training_jobs.models.base import FixedFactors, UserTowerTables
from training_jobs.storage import S3ObjectStore

logger = logging.getLogger(__name__)

_TABLES = ("user_table", "foldin_table", "item_vectors")
EPOCH_CHECKPOINT_EVERY_S = 600.0
"""Least seconds between two saves of a gradient-trained candidate's state (AWS gives 2 min of notice)."""


def _shape(graph: InteractionGraph) -> list[int]:
    return [graph.n_users, graph.n_items, graph.n_edges]


def _result_document(result: CandidateResult) -> dict[str, Any]:
    return {
        "spec": result.spec.to_dict(),
        "metrics": dict(result.metrics),
        "train_seconds": result.train_seconds,
        "peak_memory_mb": result.peak_memory_mb,
        "device": result.device,
        "error": result.error,
    }


def _spec(document: dict[str, Any]) -> CandidateSpec:
    return CandidateSpec(document["model_type"], dict(document["params"]))


def _result(document: dict[str, Any]) -> CandidateResult:
    return CandidateResult(
        _spec(document["spec"]),
        {name: float(value) for name, value in document["metrics"].items()},
        float(document["train_seconds"]),
        float(document["peak_memory_mb"]),
        str(document["device"]),
        document["error"],
    )


def _save_tables(tables: UserTowerTables, path: Path) -> None:
    arrays = {name: getattr(tables, name).detach().cpu().float().numpy() for name in _TABLES}
    with path.open("wb") as handle:
        np.savez(
            handle, foldin_scale=np.float64(tables.foldin_scale), blend=np.float64(tables.blend), **arrays
        )


def _tables(path: Path) -> UserTowerTables:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: torch.as_tensor(npz[name]) for name in _TABLES}
        return UserTowerTables(foldin_scale=float(npz["foldin_scale"]), blend=float(npz["blend"]), **arrays)


class JobCheckpoints:
    """The selection's :class:`~training_jobs.candidates.SelectionLog` kept in S3 (see the module)."""

    def __init__(
        self,
        store: S3ObjectStore,
        bucket: str,
        prefix: str,
        fit: InteractionGraph,
        config: TrainingConfig,
        device: torch.device,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._prefix = prefix
        self._shape = _shape(fit)
        self._config = config
        self._device = device
        self._records: dict[int, dict[str, Any]] = {}
        self._best_index: int | None = None
        for key in store.list_keys(bucket, prefix):
            match = re.fullmatch(re.escape(prefix) + r"candidate-(\d+)\.json", key)
            if match is None:
                continue
            document = self._read_json(key)
            if document is not None and document.get("shape") == self._shape:
                self._records[int(match.group(1))] = document
        bests = [index for index, record in self._records.items() if record.get("best")]
        self._best_index = max(bests) if bests else None
        if self._records:
            logger.info("resuming: %d finished candidate(s) under %s", len(self._records), prefix)

    def _read_json(self, key: str) -> dict[str, Any] | None:
        try:
            document = json.loads(self._store.get_bytes(self._bucket, key))
        except (ValueError, DatasetError) as exc:
            logger.warning("ignoring unreadable checkpoint %s: %s", key, exc)
            return None
        return document if isinstance(document, dict) else None

    def _put(self, name: str, data: bytes, content_type: str) -> bool:
        try:
            self._store.put_bytes(self._bucket, self._prefix + name, data, content_type)
        except ArtifactError as exc:
            logger.warning("checkpoint %s not written (a retry would redo this work): %s", name, exc)
            return False
        return True

    def _put_tables(self, name: str, tables: UserTowerTables) -> bool:
        """Upload the tables through a local file (multipart: no second copy of them in memory)."""
        try:
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / name
                _save_tables(tables, path)
                self._store.put_file(self._bucket, self._prefix + name, path)
        except (ArtifactError, OSError) as exc:
            logger.warning("checkpoint %s not written (a retry would redo this work): %s", name, exc)
            return False
        return True

    def finished(self, index: int, spec: CandidateSpec) -> tuple[CandidateResult, ...] | None:
        """Planned candidate ``index``'s results from an earlier attempt (None if it is not the same spec)."""
        record = self._records.get(index)
        if record is None or _spec(record["planned"]) != spec:
            return None
        return tuple(_result(document) for document in record["results"])

    def best(self) -> Fitted | None:
        """The earlier attempts' best model, as fixed factors restored from its export tables."""
        if self._best_index is None:
            return None
        name = f"best-{self._best_index:03d}"
        document = self._read_json(self._prefix + name + ".json")
        if document is None:
            return None
        try:
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / "best.npz"
                self._store.get_file(self._bucket, self._prefix + name + ".npz", path)
                tables = _tables(path)
        except (ValueError, OSError, KeyError, DatasetError) as exc:
            logger.warning("ignoring unreadable checkpoint %s.npz: %s", name, exc)
            return None
        spec = _spec(document["spec"])
        return Fitted(
            FixedFactors(tables).to(self._device),
            spec,
            self._config.model_copy(update={"model_type": spec.model_type}),
            dict(document["training"]),
            {name: float(value) for name, value in document["metrics"].items()},
        )

    def epochs(self, index: int, spec: CandidateSpec) -> EpochState:
        """Where planned candidate ``index`` keeps its state between epochs."""
        tag = {"shape": self._shape, "spec": spec.label}
        key = f"{self._prefix}epochs-{index:03d}.pt"
        return EpochState(self._store, self._bucket, key, tag, EPOCH_CHECKPOINT_EVERY_S)

    def refit_epochs(self, graph: InteractionGraph, spec: CandidateSpec) -> EpochState:
        """Where the chosen spec's refit on the whole window keeps its state between epochs."""
        tag = {"shape": _shape(graph), "spec": spec.label, "refit": True}
        key = f"{self._prefix}epochs-refit.pt"
        return EpochState(self._store, self._bucket, key, tag, EPOCH_CHECKPOINT_EVERY_S)

    def spent_seconds(self) -> float:
        """Fitting seconds of the candidates earlier attempts finished."""
        return float(sum(float(record["seconds"]) for record in self._records.values()))

    def record(self, candidate: FinishedCandidate) -> None:
        """Keep the candidate (and its model when it is the new best) for a later attempt."""
        best = candidate.best
        if best is not None:
            name = f"best-{candidate.index:03d}"
            document = {
                "shape": self._shape,
                "spec": best.spec.to_dict(),
                "metrics": dict(best.metrics),
                "training": dict(best.training),
            }
            saved = self._put_tables(name + ".npz", best.model.export_tables())
            if not (saved and self._put(name + ".json", json.dumps(document).encode(), "application/json")):
                return  # without its model the candidate must not read as finished
        record = {
            "shape": self._shape,
            "planned": candidate.spec.to_dict(),
            "results": [_result_document(result) for result in candidate.results],
            "seconds": candidate.seconds,
            "best": best is not None,
        }
        self._put(f"candidate-{candidate.index:03d}.json", json.dumps(record).encode(), "application/json")


class EpochState:
    """One gradient-trained candidate's :class:`~training_jobs.trainer.EpochCheckpoint` in S3."""

    def __init__(
        self, store: S3ObjectStore, bucket: str, key: str, tag: dict[str, Any], every_s: float
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._tag = tag
        self.every_s = every_s

    def load(self) -> dict[str, Any] | None:
        """The saved state when it is this candidate's on this graph."""
        if not self._store.list_keys(self._bucket, self._key):
            return None
        try:
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / "state.pt"
                self._store.get_file(self._bucket, self._key, path)
                state = torch.load(path, weights_only=True)
        except (DatasetError, RuntimeError, ValueError, OSError) as exc:
            logger.warning("ignoring unreadable checkpoint %s: %s", self._key, exc)
            return None
        if not isinstance(state, dict) or state.get("tag") != self._tag:
            return None
        logger.info("resuming %s after epoch %s", self._tag.get("spec"), state.get("epoch"))
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (best effort: a failed write is logged)."""
        try:
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / "state.pt"
                torch.save({**state, "tag": self._tag}, path)  # to disk: no in-memory copy of the weights
                self._store.put_file(self._bucket, self._key, path)
        except (ArtifactError, OSError) as exc:
            logger.warning("checkpoint %s not written (a retry would redo this work): %s", self._key, exc)
