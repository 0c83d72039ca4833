"""Full-ranking evaluation (all items scored, training items masked), batched on the model's device.

Metrics per user with at least one held-out item, then averaged:
``recall@K = hits / |held-out|``, ``precision@K = hits / K``,
``ndcg@K = sum_{hit ranks r} 1/log2(r+2) / sum_{r < min(|held-out|, K)} 1/log2(r+2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training_jobs.data import IntArray, InteractionGraph

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
DEFAULT_KS: tuple[int, ...] = (10, 20)


#: Most scores held at once while evaluating (users per chunk x items): 2^25 float32 cells = 128 MiB,
#: so 451k users x 100k items is scored 335 users at a time instead of as one dense matrix.
MAX_SCORE_CELLS = 1 << 25


@dataclass(frozen=True)
class CsrPairs:
    """(user, item) pairs sorted by user with an index pointer, on a device."""

    indptr: torch.Tensor
    items: torch.Tensor

    @classmethod
    def from_arrays(
        cls, users: IntArray, items: IntArray, n_users: int, device: torch.device | str
    ) -> CsrPairs:
        """Build from (possibly unsorted) index arrays."""
        order = np.argsort(users, kind="stable")
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(
            indptr=torch.as_tensor(indptr, device=device),
            items=torch.as_tensor(items[order].astype(np.int64), device=device),
        )

    def counts(self) -> torch.Tensor:
        """Pairs per user."""
        return self.indptr[1:] - self.indptr[:-1]

    def rows_of(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row in ``users``, item) of every pair of ``users``: a sparse mask of [len(users), n_items]."""
        counts = self.indptr[users + 1] - self.indptr[users]
        rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), counts)
        offsets = torch.arange(rows.numel(), device=users.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        return rows, self.items[torch.repeat_interleave(self.indptr[users], counts) + offsets]


def _writable(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` when it owns its storage (a fresh matrix, written in place), else a copy of it."""
    owns = scores.is_contiguous() and scores.storage_offset() == 0
    if owns and scores.untyped_storage().nbytes() == scores.numel() * scores.element_size():
        return scores
    return scores.clone()


class Evaluator:
    """Ranks every item for every evaluated user, masking training pairs; reuse across epochs.

    Users are scored in chunks of at most ``batch_size`` users and ``max_cells`` scores, each reduced to
    its top-K before the next, so memory is bounded by one chunk whatever the number of users.
    """

    def __init__(
        self,
        train: InteractionGraph,
        holdout_users: IntArray,
        holdout_items: IntArray,
        device: torch.device | str,
        ks: Sequence[int] = DEFAULT_KS,
        batch_size: int = 2048,
        max_cells: int = MAX_SCORE_CELLS,
    ) -> None:
        self.n_users = train.n_users
        self.n_items = train.n_items
        self.ks = tuple(sorted(ks))
        self.batch_size = max(1, min(batch_size, max_cells // max(train.n_items, 1)))
        self.device = torch.device(device)
        self.train_pairs = CsrPairs.from_arrays(train.users, train.items, train.n_users, device)
        # drop held-out pairs that are also training pairs: they are masked and could never be hits
        train_keys = train.users * train.n_items + train.items
        keys = np.unique(holdout_users.astype(np.int64) * train.n_items + holdout_items)
        keys = keys[~np.isin(keys, train_keys)]
        self.holdout = CsrPairs.from_arrays(
            keys // train.n_items, keys % train.n_items, train.n_users, device
        )
        self.eval_users = torch.nonzero(self.holdout.counts() > 0).flatten()
        self.n_eval_users = int(self.eval_users.numel())
        max_k = self.ks[-1]
        discounts = 1.0 / torch.log2(torch.arange(max_k, device=self.device, dtype=torch.float64) + 2.0)
        self._discounts = discounts
        self._ideal = torch.cat(
            [torch.zeros(1, device=self.device, dtype=torch.float64), discounts.cumsum(0)]
        )

    @torch.no_grad()
    def evaluate(self, score_fn: ScoreFn) -> dict[str, float]:
        """Metrics ``recall_K``, ``precision_K``, ``ndcg_K`` for ``score_fn(users) -> [B, n_items]``."""
        max_k = min(self.ks[-1], self.n_items)
        sums = {f"{name}_{k}": 0.0 for k in self.ks for name in ("recall", "precision", "ndcg")}
        counts = self.holdout.counts()
        for start in range(0, self.n_eval_users, self.batch_size):
            users = self.eval_users[start : start + self.batch_size]
            n_true = counts[users]
            scores = _writable(score_fn(users).float())
            rows, items = self.train_pairs.rows_of(users)
            scores[rows, items] = float("-inf")  # in place: the chunk is the only block held
            top = torch.topk(scores, k=max_k, dim=1).indices
            del scores
            truth_rows, truth_items = self.holdout.rows_of(users)
            hits = torch.isin(
                torch.arange(users.numel(), device=self.device).unsqueeze(1) * self.n_items + top,
                truth_rows * self.n_items + truth_items,
            ).double()
            n_true_f = n_true.double()
            for k in self.ks:
                kk = min(k, max_k)
                hit_k = hits[:, :kk]
                n_hits = hit_k.sum(1)
                dcg = (hit_k * self._discounts[:kk]).sum(1)
                idcg = self._ideal[torch.clamp(n_true, max=kk)]
                sums[f"recall_{k}"] += float((n_hits / n_true_f).sum())
                sums[f"precision_{k}"] += float((n_hits / k).sum())
                sums[f"ndcg_{k}"] += float((dcg / idcg).sum())
        denominator = max(self.n_eval_users, 1)
        return {name: value / denominator for name, value in sums.items()}

    def popularity_scores(self, train: InteractionGraph) -> ScoreFn:
        """Score function of the popularity baseline (items ranked by training-user count)."""
        popularity = torch.as_tensor(train.item_counts(), device=self.device, dtype=torch.float32)

        def score(users: torch.Tensor) -> torch.Tensor:
            return popularity.unsqueeze(0).expand(users.numel(), -1)

        return score


def popularity_metrics(evaluator: Evaluator, train: InteractionGraph) -> dict[str, float]:
    """Metrics of the popularity baseline on the evaluator's hold-out."""
    return evaluator.evaluate(evaluator.popularity_scores(train))
