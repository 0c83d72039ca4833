"""Implicit-feedback ALS (Hu, Koren & Volinsky, 2008) fitted with the ``implicit`` library.

Confidence of a training pair: ``c_ui = 1 + alpha * w_ui`` where ``w_ui`` is the pair's weight
(interaction-type strength times recency decay); preference ``p_ui = 1``. ``implicit`` solves
``min sum c_ui (p_ui - x_u . y_i)^2 + reg (|x_u|^2 + |y_i|^2)`` by alternating conjugate-gradient steps
(on the GPU with its CUDA build when one is present and asked for).

Popularity damping: an item's vector is scaled by ``(1 + n_i)^-damping`` (``n_i`` = its training users),
so scores ``x_u . y_i (1 + n_i)^-damping`` lean away from the head; 0 turns it off.

Fold-in (the exported user tower's rule): ALS's own user solve ``x = (Y^T C Y + reg I)^-1 Y^T C p``. The
per-user part of ``Y^T C Y`` is replaced by its average over training users, so the solve becomes one
precomputed matrix: ``foldin_table[i] = (Y^T Y + M + reg I)^-1 y_i`` and the tower's weighted mean of those
rows is the user's vector up to scale (a scale does not change a user's ranking).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import torch

from training_jobs.data import InteractionGraph
from training_jobs.models.base import FixedFactors, user_tower_tables, weighted_row_sums

logger = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ALSParams:
    """Hyper-parameters of :func:`fit_als`."""

    factors: int = 128
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    damping: float = 0.0
    use_gpu: bool = False
    threads: int = 0
    seed: int = 0


def confidence_matrix(graph: InteractionGraph, alpha: float) -> sp.csr_matrix:
    """Users x items CSR of confidences ``1 + alpha * weight`` over the training pairs."""
    values = 1.0 + alpha * graph.weights.astype(np.float32)
    matrix = sp.csr_matrix(
        (values, (graph.users, graph.items)), shape=(graph.n_users, graph.n_items), dtype=np.float32
    )
    matrix.sum_duplicates()
    return matrix


def gpu_available() -> bool:
    """Whether ``implicit`` was built with CUDA and sees a device."""
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except ImportError:  # pragma: no cover - the CPU wheel always has the module
        return False


def foldin_matrix(item_factors: Matrix, confidence: sp.csr_matrix, regularization: float) -> Matrix:
    """Rows ``(Y^T Y + M + reg I)^-1 y_i`` where ``M`` is the training users' mean ``Y^T (C_u - I) Y``."""
    y = item_factors.astype(np.float64)
    n_users = max(confidence.shape[0], 1)
    extra = np.asarray((confidence - confidence.sign()).sum(axis=0)).ravel() / n_users
    gram = y.T @ y + (y * extra[:, None]).T @ y + regularization * np.eye(y.shape[1])
    return np.linalg.solve(gram, y.T).T.astype(np.float32)


def damping_factors(graph: InteractionGraph, damping: float) -> Matrix:
    """Per-item score multipliers ``(1 + training users)^-damping``."""
    counts = graph.item_counts().astype(np.float64)
    return np.power(1.0 + counts, -damping).astype(np.float32)


@dataclass
class ALSFit:
    """The factors of one ALS fit (re-usable for several damping values without refitting)."""

    user_factors: Matrix
    item_factors: Matrix
    foldin: Matrix
    device: str
    _history: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def _history_sums(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Each training user's weighted sum of fold-in rows and of weights (same for every damping)."""
        if self._history is None:
            self._history = weighted_row_sums(
                torch.as_tensor(graph.users),
                torch.as_tensor(graph.items),
                torch.as_tensor(graph.weights.astype(np.float32)),
                torch.as_tensor(self.foldin),
                graph.n_users,
            )
        return self._history

    def model(self, graph: InteractionGraph, damping: float, blend: float) -> FixedFactors:
        """The servable model with ``damping`` applied to the item vectors."""
        user = torch.as_tensor(self.user_factors)
        foldin = torch.as_tensor(self.foldin)
        items = torch.as_tensor(self.item_factors * damping_factors(graph, damping)[:, None])
        sums, totals = self._history_sums(graph)
        # the fit's own arrays, shared by every damping variant (items are this variant's own)
        return FixedFactors(user_tower_tables(user, foldin, items, sums, totals, blend, copy=False))


class ALSRun:
    """One ``implicit`` ALS model trained in stages.

    ``advance(5)`` then ``advance(10)`` ends where one 15-iteration fit ends (same seed and start; each
    iteration picks up the last one's factors), so a grid can score every candidate after a few iterations
    and finish only the promising ones.
    """

    def __init__(self, graph: InteractionGraph, params: ALSParams) -> None:
        self.params = params
        self.confidence = confidence_matrix(graph, params.alpha)
        self.iterations_done = 0
        self.device = "cuda" if params.use_gpu and gpu_available() else "cpu"
        self._model = self._new_model()

    def _new_model(self) -> Any:
        common = {
            "factors": self.params.factors,
            "regularization": self.params.regularization,
            "alpha": 1.0,  # the confidences are used as given
            "random_state": self.params.seed,
        }
        if self.device == "cuda":
            import implicit.gpu.als

            return implicit.gpu.als.AlternatingLeastSquares(**common)
        import implicit.cpu.als
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # implicit checks BLAS threads when built
            return implicit.cpu.als.AlternatingLeastSquares(**common, num_threads=self.params.threads)

    def advance(self, iterations: int) -> None:
        """Run ``iterations`` more ALS iterations from where the last call stopped."""
        from threadpoolctl import threadpool_limits

        if iterations <= 0:
            return
        self._model.iterations = iterations
        with threadpool_limits(limits=1, user_api="blas"):  # implicit runs its own threads
            self._model.fit(self.confidence, show_progress=False)
        self.iterations_done += iterations

    def factors(self) -> ALSFit:
        """The current factors with their fold-in matrix (raises when they are not finite)."""
        model = self._model.to_cpu() if self.device == "cuda" else self._model
        users = np.asarray(model.user_factors, dtype=np.float32)
        items = np.asarray(model.item_factors, dtype=np.float32)
        if not (np.isfinite(users).all() and np.isfinite(items).all()):
            raise FloatingPointError("ALS factors are not finite; raise regularization")
        foldin = foldin_matrix(items, self.confidence, self.params.regularization)
        return ALSFit(users, items, foldin, self.device)


def fit_als_factors(graph: InteractionGraph, params: ALSParams) -> ALSFit:
    """Fit ALS on ``graph`` (confidences from its weights) and precompute the fold-in matrix."""
    run = ALSRun(graph, params)
    run.advance(params.iterations)
    return run.factors()


def fit_als(graph: InteractionGraph, params: ALSParams, blend: float = 0.5) -> FixedFactors:
    """Fit ALS and return the servable model (see the module docstring)."""
    return fit_als_factors(graph, params).model(graph, params.damping, blend)
