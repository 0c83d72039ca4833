"""The promotion gate: a 3-way time split of the window and one measurement for every contender.

The tenant's window is split by time (milliseconds since the epoch, as in the snapshot):

- **gate holdout**: the newest ``gate_fraction`` of the window's events (every event at or after
  ``gate_start``); it judges the contenders and is never used to choose anything;
- **selection**: the newest ``selection_fraction`` of the events before ``gate_start`` (every event at
  or after ``selection_start``); it picks epochs (and, with several candidate specs, the spec);
- **fit**: everything before ``selection_start``.

Contenders, all ranked over their own item set by :func:`holdout_metrics` (the same code for each):

- the **candidate**: the model trained on *fit* with the settings *selection* chose, exported the way
  the published model is (the ONNX user tower and the item vectors);
- the **active model**: read from its own published artifacts (``manifest.json``, ``user_tower.onnx``,
  ``items.faiss``, ``lookup.npz``, hash-checked against the manifest);
- **popularity**: items ranked by how many users interacted with them before ``gate_start``.

Each holdout user is represented as serving represents a shopper: a model that trained on the user uses
the trained vector with the events after its training data folded in; a model that never saw the user
folds in the user's events alone. The events are the user's newest :data:`FEED_DEPTH` events before
``gate_start``, weighted by type and halved every :data:`FOLD_IN_HALF_LIFE_HOURS` of age at
``gate_start`` (serving's defaults). Items the user interacted with before ``gate_start`` are masked;
the held-out truth is the other items the user interacted with in the judged part of the holdout.

Leak guard: the active model saw every event up to the end of its own data (``data_window.end`` of its
manifest, else its ``created_at``: the instant serving folds in after). Only events strictly newer than
that may judge it, so the judged holdout starts at ``max(gate_start, active_end + 1 ms)``; candidate and
popularity are judged on that same, possibly smaller, holdout. With no judged event left, the active model
cannot be compared fairly and it stays.

Decision, on NDCG@10 of the judged holdout: the candidate is promoted only if it beats popularity
(a floor), reaches ``quality_floor`` and beats the active model (when there is one that could be read).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from contract.interactions import INTERACTION_CODES, WEIGHTS_BY_CODE
from contract.layout import ITEM_INDEX, LOOKUP, USER_TOWER
from contract.manifest import trained_until
from training_jobs.errors import DatasetError
from training_jobs.storage import S3ObjectStore

IntArray = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float32]
StrArray = npt.NDArray[np.str_]

GATE_METRIC = "ndcg_10"
GATE_KS: tuple[int, ...] = (10, 20)
#: Serving's defaults: the newest events it reads per shopper and the fold-in's recency half-life.
FEED_DEPTH = 20
FOLD_IN_HALF_LIFE_HOURS = 24.0
#: Fold-in weight per interaction type code (0 view, 1 click, 2 add_to_cart, 3 purchase), as serving.
TYPE_WEIGHTS = np.array(WEIGHTS_BY_CODE)
TYPE_CODES = dict(INTERACTION_CODES)
_SCORE_BATCH = 1024
_SCORE_CELLS = 1 << 26
"""At most this many scores (users x items, float32: 256 MiB) are held at once."""
_TOWER_BATCH = 4096


def millis(table: pa.Table) -> IntArray:
    """The ``timestamp`` column as int64 milliseconds (a missing timestamp reads 0)."""
    stamps = pc.cast(pc.cast(table["timestamp"], pa.timestamp("ms")), pa.int64())
    return np.asarray(pc.fill_null(stamps, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def iso_ms(value: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC."""
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _newest_cut(stamps: IntArray, fraction: float) -> int:
    """The time from which ``ceil(fraction * n)`` of the newest events (and any tied with them) lie."""
    ordered = np.sort(stamps)
    n_newest = max(1, math.ceil(fraction * ordered.size))
    return int(ordered[ordered.size - n_newest])


@dataclass(frozen=True)
class TimeSplit:
    """Where the window is cut: fit < ``selection_start`` <= selection < ``gate_start`` <= gate."""

    selection_start_ms: int
    gate_start_ms: int
    training: pa.Table
    """The events before ``gate_start`` with ``is_validation`` marking the selection part."""
    fit_events: int
    selection_events: int
    gate_events: int

    def describe(self) -> dict[str, Any]:
        """The split as the manifest records it."""
        return {
            "selection_start": iso_ms(self.selection_start_ms),
            "gate_start": iso_ms(self.gate_start_ms),
            "fit_events": self.fit_events,
            "selection_events": self.selection_events,
            "gate_events": self.gate_events,
        }


def time_split(interactions: pa.Table, gate_fraction: float, selection_fraction: float) -> TimeSplit:
    """Cut the window into fit / selection / gate by time (see the module docstring)."""
    stamps = millis(interactions)
    if stamps.size == 0:
        raise DatasetError("dataset snapshot has no interactions")
    gate_start = _newest_cut(stamps, gate_fraction)
    before = stamps < gate_start
    if not before.any():
        raise DatasetError(
            f"every interaction is at or after {iso_ms(gate_start)}: there is no history before the "
            "gate holdout to train on (the window needs interactions at more than one time)"
        )
    selection_start = _newest_cut(stamps[before], selection_fraction)
    fit = stamps < selection_start
    if not fit.any():
        raise DatasetError(
            f"every interaction before the gate holdout ({iso_ms(gate_start)}) is at or after "
            f"{iso_ms(selection_start)}: nothing is left to fit on before the selection split"
        )
    training = interactions.filter(pa.array(before))
    if "is_validation" in training.column_names:
        training = training.drop_columns(["is_validation"])
    flags = pa.array(stamps[before] >= selection_start)
    return TimeSplit(
        selection_start_ms=selection_start,
        gate_start_ms=gate_start,
        training=training.append_column("is_validation", flags),
        fit_events=int(fit.sum()),
        selection_events=int(before.sum() - fit.sum()),
        gate_events=int((~before).sum()),
    )


def all_for_refit(interactions: pa.Table) -> pa.Table:
    """The whole window as training data: no event held out (the published model's refit)."""
    table = interactions
    if "is_validation" in table.column_names:
        table = table.drop_columns(["is_validation"])
    return table.append_column("is_validation", pa.array(np.zeros(table.num_rows, dtype=bool)))


def judged_from(gate_start_ms: int, active_end_ms: int | None) -> int:
    """Leak guard: the first instant whose events may judge the contenders (see the module docstring)."""
    if active_end_ms is None:
        return gate_start_ms
    return max(gate_start_ms, active_end_ms + 1)


@dataclass(frozen=True)
class GateHoldout:
    """The evaluated users: their history before ``gate_start`` and their held-out items (ids)."""

    gate_start_ms: int
    judged_from_ms: int
    user_ids: StrArray
    context_indptr: IntArray
    context_items: StrArray
    """Each user's events before ``gate_start``, newest first."""
    context_types: npt.NDArray[np.int8]
    context_ms: IntArray
    truth_indptr: IntArray
    truth_items: StrArray
    judged_events: int

    @property
    def n_users(self) -> int:
        """Users with history before the gate and at least one new item in the judged part."""
        return int(self.user_ids.size)

    def describe(self) -> dict[str, Any]:
        """The judged holdout as the manifest records it."""
        return {
            "judged_from": iso_ms(self.judged_from_ms),
            "judged_events": self.judged_events,
            "users": self.n_users,
            "held_out_items": int(self.truth_items.size),
        }


def _unique_pairs(groups: IntArray, items: StrArray) -> tuple[IntArray, StrArray]:
    """Distinct (group, item) pairs, sorted by group."""
    if items.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, dtype=str)
    names, codes = np.unique(items, return_inverse=True)
    keys = np.unique(groups.astype(np.int64) * names.size + codes.astype(np.int64))
    return keys // names.size, names[keys % names.size].astype(str)


def _csr(groups: IntArray, n_groups: int) -> IntArray:
    return np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=n_groups))]).astype(np.int64)


def build_holdout(
    interactions: pa.Table, catalogue_ids: StrArray, gate_start_ms: int, judged_from_ms: int
) -> GateHoldout:
    """The holdout of the window's catalogue events: history before the gate, truth from ``judged_from``."""
    table = interactions.filter(
        pc.and_(pc.is_valid(interactions["user_id"]), pc.is_valid(interactions["item_id"]))
    )
    users = np.asarray(pc.cast(table["user_id"], pa.string()).to_pylist(), dtype=str)
    items = np.asarray(pc.cast(table["item_id"], pa.string()).to_pylist(), dtype=str)
    kinds = pc.cast(table["interaction_type"], pa.string()).to_pylist()
    types = np.array([TYPE_CODES.get(str(kind), 0) for kind in kinds], dtype=np.int8)
    stamps = millis(table)
    known = np.isin(items, catalogue_ids)
    users, items, types, stamps = users[known], items[known], types[known], stamps[known]
    before = stamps < gate_start_ms
    judged = stamps >= judged_from_ms
    eligible = np.intersect1d(np.unique(users[before]), np.unique(users[judged]))

    # history: events before the gate of eligible users, grouped by user, newest first
    rows = before & np.isin(users, eligible)
    h_user = np.searchsorted(eligible, users[rows])
    order = np.lexsort((-stamps[rows], h_user))
    h_user, h_items = h_user[order], items[rows][order]
    h_types, h_ms = types[rows][order], stamps[rows][order]

    # truth: distinct items of the judged part that the user had not interacted with before the gate
    rows = judged & np.isin(users, eligible)
    t_user = np.searchsorted(eligible, users[rows])
    t_user, t_items = _unique_pairs(t_user, items[rows])
    names, codes = np.unique(np.concatenate([h_items, t_items]), return_inverse=True)
    h_keys = h_user * names.size + codes[: h_items.size]
    fresh = ~np.isin(t_user * names.size + codes[h_items.size :], h_keys)
    t_user, t_items = t_user[fresh], t_items[fresh]
    has_truth = np.bincount(t_user, minlength=eligible.size) > 0
    keep_user = np.flatnonzero(has_truth)
    remap = np.full(eligible.size, -1, dtype=np.int64)
    remap[keep_user] = np.arange(keep_user.size)
    h_keep = has_truth[h_user]
    h_new = remap[h_user[h_keep]]
    t_new = remap[t_user]
    return GateHoldout(
        gate_start_ms=gate_start_ms,
        judged_from_ms=judged_from_ms,
        user_ids=eligible[keep_user].astype(str),
        context_indptr=_csr(h_new, keep_user.size),
        context_items=h_items[h_keep].astype(str),
        context_types=h_types[h_keep],
        context_ms=h_ms[h_keep],
        truth_indptr=_csr(t_new, keep_user.size),
        truth_items=t_items.astype(str),
        judged_events=int(judged.sum()),
    )


def _positions(universe: StrArray, wanted: StrArray) -> IntArray:
    """Index of each wanted id in ``universe`` (any order), -1 where absent."""
    if universe.size == 0 or wanted.size == 0:
        return np.full(wanted.size, -1, dtype=np.int64)
    order = np.argsort(universe, kind="stable")
    ordered = universe[order]
    pos = np.minimum(np.searchsorted(ordered, wanted), ordered.size - 1)
    return np.where(ordered[pos] == wanted, order[pos], -1).astype(np.int64)


ScoreBatch = Callable[[int, int], FloatMatrix]
"""Scores of holdout users ``start..stop-1`` against every item of a contender: [stop-start, n_items]."""


def holdout_metrics(
    item_ids: StrArray, score_batch: ScoreBatch, holdout: GateHoldout, ks: Sequence[int] = GATE_KS
) -> dict[str, float]:
    """``recall_K``, ``precision_K``, ``ndcg_K`` of one contender over the holdout's users.

    The contender ranks its own items; the user's history is masked. A held-out item the contender does
    not know cannot be a hit but still counts in recall's and NDCG's denominators.
    """
    ks = tuple(sorted(ks))
    sums = {f"{name}_{k}": 0.0 for k in ks for name in ("recall", "precision", "ndcg")}
    if holdout.n_users == 0:
        return sums
    n_items = item_ids.size
    max_k = min(ks[-1], n_items)
    discounts = 1.0 / np.log2(np.arange(ks[-1]) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])
    context_pos = _positions(item_ids, holdout.context_items)
    truth_pos = _positions(item_ids, holdout.truth_items)
    n_true = np.diff(holdout.truth_indptr)
    batch = max(1, min(_SCORE_BATCH, _SCORE_CELLS // max(n_items, 1)))
    for start in range(0, holdout.n_users, batch):
        stop = min(start + batch, holdout.n_users)
        scores = np.array(score_batch(start, stop), dtype=np.float32, copy=True)
        truth = np.zeros(scores.shape, dtype=bool)
        for row, user in enumerate(range(start, stop)):
            masked = context_pos[holdout.context_indptr[user] : holdout.context_indptr[user + 1]]
            scores[row, masked[masked >= 0]] = -np.inf
            hit = truth_pos[holdout.truth_indptr[user] : holdout.truth_indptr[user + 1]]
            truth[row, hit[hit >= 0]] = True
        if max_k == 0:
            continue
        top = np.argpartition(-scores, max_k - 1, axis=1)[:, :max_k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_scores, axis=1, kind="stable"), axis=1)
        hits = np.take_along_axis(truth, top, axis=1).astype(np.float64)
        true = n_true[start:stop].astype(np.float64)
        for k in ks:
            kk = min(k, max_k)
            n_hits = hits[:, :kk].sum(axis=1)
            dcg = (hits[:, :kk] * discounts[:kk]).sum(axis=1)
            idcg = ideal[np.minimum(n_true[start:stop], kk)]
            sums[f"recall_{k}"] += float((n_hits / true).sum())
            sums[f"precision_{k}"] += float((n_hits / k).sum())
            sums[f"ndcg_{k}"] += float((dcg / idcg).sum())
    return {name: round(value / holdout.n_users, 6) for name, value in sums.items()}


def popularity_on_holdout(
    interactions: pa.Table, catalogue_ids: StrArray, holdout: GateHoldout
) -> dict[str, float]:
    """The popularity floor: catalogue items ranked by how many users had them before ``gate_start``."""
    before = interactions.filter(
        pc.and_(
            pc.and_(pc.is_valid(interactions["user_id"]), pc.is_valid(interactions["item_id"])),
            pa.array(millis(interactions) < holdout.gate_start_ms),
        )
    )
    users = np.asarray(pc.cast(before["user_id"], pa.string()).to_pylist(), dtype=str)
    items = np.asarray(pc.cast(before["item_id"], pa.string()).to_pylist(), dtype=str)
    known = np.isin(items, catalogue_ids)
    _, user_codes = np.unique(users[known], return_inverse=True)
    _, pair_items = _unique_pairs(user_codes.astype(np.int64), items[known])
    item_ids, counts = np.unique(pair_items, return_counts=True)
    row = counts.astype(np.float32)

    def score(start: int, stop: int) -> FloatMatrix:
        return np.broadcast_to(row, (stop - start, row.size))

    return holdout_metrics(item_ids.astype(str), score, holdout)


def trained_until_ms(manifest: dict[str, Any]) -> int | None:
    """The end of a version's training data as serving reads it (``contract.manifest.trained_until``)."""
    moment = trained_until(manifest)
    return int(round(moment.timestamp() * 1000)) if moment is not None else None


class ServedModel:
    """A contender as serving sees it: ONNX user tower, item vectors, known users, end of its data."""

    def __init__(
        self,
        *,
        user_tower: bytes,
        item_ids: StrArray,
        item_vectors: FloatMatrix,
        user_ids: StrArray,
        trained_until_ms: int | None,
    ) -> None:
        import onnxruntime as ort

        if item_vectors.shape[0] != item_ids.size:
            raise ValueError(f"{item_ids.size} item ids but {item_vectors.shape[0]} item vectors")
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        self._session: Any = ort.InferenceSession(user_tower, options, providers=["CPUExecutionProvider"])
        self.item_ids = item_ids.astype(str)
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.user_ids = user_ids.astype(str)
        self.trained_until_ms = trained_until_ms

    def _fold_in(
        self, holdout: GateHoldout, context_pos: IntArray, user: int, known: bool
    ) -> tuple[IntArray, npt.NDArray[np.float32]]:
        """The user's fold-in items (indices) and weights, as serving computes them."""
        lo, hi = holdout.context_indptr[user], holdout.context_indptr[user + 1]
        lo_feed = slice(lo, min(hi, lo + FEED_DEPTH))  # serving reads the newest events only
        items = context_pos[lo_feed]
        stamps = holdout.context_ms[lo_feed]
        keep = items >= 0
        if known and self.trained_until_ms is not None:
            keep &= stamps > self.trained_until_ms  # a trained user's older events are in the model
        if not keep.any():
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        age_h = np.maximum(0, holdout.gate_start_ms - stamps[keep]) / 3_600_000
        raw = TYPE_WEIGHTS[holdout.context_types[lo_feed][keep]] * 0.5 ** (age_h / FOLD_IN_HALF_LIFE_HOURS)
        total = raw.sum()
        weights = raw / total if total > 0 else np.full(raw.size, 1.0 / raw.size)
        return items[keep], weights.astype(np.float32)

    def user_vectors(self, holdout: GateHoldout) -> FloatMatrix:
        """Each holdout user's vector from the tower (trained vector and/or folded-in history)."""
        context_pos = _positions(self.item_ids, holdout.context_items)
        user_index = _positions(self.user_ids, holdout.user_ids)
        parts: list[FloatMatrix] = []
        for start in range(0, holdout.n_users, _TOWER_BATCH):
            stop = min(start + _TOWER_BATCH, holdout.n_users)
            folds = [
                self._fold_in(holdout, context_pos, u, bool(user_index[u] >= 0)) for u in range(start, stop)
            ]
            width = max(1, max(items.size for items, _ in folds))
            indices = np.full((stop - start, width), -1, dtype=np.int64)
            weights = np.zeros((stop - start, width), dtype=np.float32)
            for row, (items, w) in enumerate(folds):
                indices[row, : items.size] = items
                weights[row, : w.size] = w
            (vectors,) = self._session.run(
                ["user_vector"],
                {"user_index": user_index[start:stop], "item_indices": indices, "item_weights": weights},
            )
            parts.append(np.asarray(vectors, dtype=np.float32))
        if not parts:
            return np.zeros((0, self.item_vectors.shape[1]), dtype=np.float32)
        return np.concatenate(parts)

    def metrics(self, holdout: GateHoldout) -> dict[str, float]:
        """This contender's :func:`holdout_metrics`."""
        vectors = self.user_vectors(holdout)

        def score(start: int, stop: int) -> FloatMatrix:
            return vectors[start:stop] @ self.item_vectors.T

        return holdout_metrics(self.item_ids, score, holdout)


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
        for name in _ACTIVE_FILES:
            data = store.get_bytes(bucket, prefix + name)
            entry = expected.get(name) if isinstance(expected, dict) else None
            if isinstance(entry, dict) and entry.get("sha256") != hashlib.sha256(data).hexdigest():
                raise ActiveModelUnreadable(f"{prefix}{name} does not match its sha256 in the manifest")
            files[name] = data
        with np.load(io.BytesIO(files[LOOKUP]), allow_pickle=False) as lookup:
            item_ids = np.asarray(lookup["item_ids"]).astype(str)
            user_ids = np.asarray(lookup["user_ids"]).astype(str)
        model = ServedModel(
            user_tower=files[USER_TOWER],
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


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate should replace the active model, and why."""

    promote: bool
    reason: str


def decide(
    candidate: dict[str, float],
    popularity: dict[str, float],
    *,
    active: dict[str, float] | None,
    active_version: str | None,
    quality_floor: float,
    metric: str = GATE_METRIC,
) -> GateDecision:
    """The gate's rule (module docstring); every number compared is on the same judged holdout."""
    score, floor_score = candidate[metric], popularity[metric]
    label = f"gate NDCG@10 {score:.4f}"
    if score <= floor_score:
        return GateDecision(False, f"{label} does not beat popularity's {floor_score:.4f}")
    if score < quality_floor:
        return GateDecision(False, f"{label} is below the quality floor {quality_floor:.4f}")
    if active is not None:
        if score <= active[metric]:
            return GateDecision(
                False, f"{label} does not beat the active {active_version}'s {active[metric]:.4f}"
            )
        return GateDecision(
            True,
            f"{label} beats the active {active_version}'s {active[metric]:.4f} and popularity's "
            f"{floor_score:.4f} on the same holdout",
        )
    return GateDecision(True, f"{label} beats popularity's {floor_score:.4f} (no active model to beat)")


@dataclass(frozen=True)
class GateReport:
    """The gate's numbers and verdict; ``document`` is the manifest's ``gate`` section."""

    decision: GateDecision
    candidate: dict[str, float]
    popularity: dict[str, float]
    active: dict[str, float] | None
    holdout: GateHoldout
    document: dict[str, Any]


def judge(
    *,
    interactions: pa.Table,
    catalogue_ids: StrArray,
    split: TimeSplit,
    candidate: ServedModel,
    active: ActiveModel | ActiveModelUnreadable | None,
    active_version: str | None,
    quality_floor: float,
) -> GateReport:
    """Measure the candidate, the active model and popularity on one judged holdout and decide."""
    readable = active if isinstance(active, ActiveModel) else None
    active_end = readable.trained_until_ms if readable is not None else None
    holdout = build_holdout(
        interactions, catalogue_ids, split.gate_start_ms, judged_from(split.gate_start_ms, active_end)
    )
    stale_active = readable is not None and holdout.n_users == 0
    if stale_active:
        # Nothing newer than the active model's data: measure the rest on the whole gate holdout.
        holdout = build_holdout(interactions, catalogue_ids, split.gate_start_ms, split.gate_start_ms)
    if holdout.n_users == 0:
        raise DatasetError(
            f"too little history to judge the model: no user with interactions before "
            f"{iso_ms(split.gate_start_ms)} has a new item at or after it (the gate holdout, the newest "
            f"{split.gate_events} interactions); upload more history or change config.gate_fraction"
        )
    candidate_metrics = candidate.metrics(holdout)
    popularity = popularity_on_holdout(interactions, catalogue_ids, holdout)
    active_metrics = readable.model.metrics(holdout) if readable is not None and not stale_active else None
    active_doc: dict[str, Any] | None = None
    if readable is not None:
        end = readable.trained_until_ms
        decision = decide(
            candidate_metrics,
            popularity,
            active=active_metrics,
            active_version=readable.version,
            quality_floor=quality_floor,
        )
        if stale_active:
            decision = GateDecision(
                False,
                f"no interaction after the active {readable.version}'s data (which ends "
                f"{iso_ms(end) if end is not None else 'at an unknown time'}) can judge it fairly, so it "
                "stays; train again once newer interactions arrive",
            )
        active_doc = {
            "version": readable.version,
            "trained_until": iso_ms(end) if end is not None else None,
            "metrics": active_metrics,
        }
    else:
        decision = decide(
            candidate_metrics, popularity, active=None, active_version=None, quality_floor=quality_floor
        )
        if isinstance(active, ActiveModelUnreadable):
            decision = GateDecision(
                decision.promote,
                f"{decision.reason}; the active {active_version} could not be read and was not "
                f"compared ({active})",
            )
            active_doc = {"version": active_version, "error": str(active)[:500]}
    document = {
        "metric": GATE_METRIC,
        "promote": decision.promote,
        "reason": decision.reason,
        "split": split.describe(),
        "holdout": holdout.describe(),
        "leak_guard": (
            "only interactions newer than the active model's data judge it (judged_from = "
            "max(gate_start, active data end + 1 ms))"
        ),
        "candidate": {"metrics": candidate_metrics},
        "active": active_doc,
        "popularity": {"metrics": popularity},
        "quality_floor": quality_floor,
        "published": "refit on every interaction of the window with the settings the selection split chose",
    }
    return GateReport(decision, candidate_metrics, popularity, active_metrics, holdout, document)
