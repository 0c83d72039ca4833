"""Scoring the gate's contenders on the holdout, each over its own item set, with the same code.

- :func:`holdout_metrics` - recall, precision and NDCG at :data:`GATE_KS` of one contender;
- :func:`popularity_on_holdout` - the popularity floor (items ranked by how many users had them before
  ``gate_start``);
- :class:`ServedModel` - a model as serving sees it (ONNX user tower and item vectors): the candidate as
  exported, or the active model as read from its published artifacts (:mod:`training_jobs.active_model`).

Each holdout user is represented as serving represents a shopper: a model that trained on the user uses
the trained vector with the events after its training data folded in; a model that never saw the user
folds in the user's events alone. The events are the user's newest :data:`FEED_DEPTH` events before
``gate_start``, weighted by type and halved every :data:`FOLD_IN_HALF_LIFE_HOURS` of age at
``gate_start`` (serving's defaults). Items the user interacted with before ``gate_start`` are masked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from contract.interactions import WEIGHTS_BY_CODE
from training_jobs.columns import IntArray, StrArray, codes_in, millis, sorted_distinct
from training_jobs.gate_holdout import GateHoldout

FloatMatrix = npt.NDArray[np.float32]

GATE_KS: tuple[int, ...] = (10, 20)
#: Serving's defaults: the newest events it reads per shopper and the fold-in's recency half-life.
FEED_DEPTH = 20
FOLD_IN_HALF_LIFE_HOURS = 24.0
#: Fold-in weight per interaction type code (0 view, 1 click, 2 add_to_cart, 3 purchase), as serving.
TYPE_WEIGHTS = np.array(WEIGHTS_BY_CODE)
_SCORE_BATCH = 1024
_SCORE_CELLS = 1 << 24
"""At most this many scores (users x items) are held at once: 64 MiB of float32, plus its negation and
argpartition's int64 indices (together 256 MiB; at 2^26 cells they were 1 GiB, the job's peak at 1M rows)."""
_TOWER_BATCH = 4096


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
    # Codes over the whole window, masked in numpy: no copy of the (large) table is made.
    catalogue = np.unique(catalogue_ids)
    items = codes_in(interactions["item_id"], pa.array(catalogue, pa.string())).astype(np.int64)
    users = codes_in(interactions["user_id"], sorted_distinct(interactions["user_id"])).astype(np.int64)
    known = (items >= 0) & (users >= 0) & (millis(interactions) < holdout.gate_start_ms)
    n_codes = max(catalogue.size, 1)
    pair_items = np.unique(users[known] * n_codes + items[known]) % n_codes
    codes, counts = np.unique(pair_items, return_counts=True)
    item_ids = catalogue[codes]
    row = counts.astype(np.float32)

    def score(start: int, stop: int) -> FloatMatrix:
        return np.broadcast_to(row, (stop - start, row.size))

    return holdout_metrics(item_ids.astype(str), score, holdout)


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
