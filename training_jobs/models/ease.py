"""EASE (Steck, 2019): a closed-form item-item model, exported as low-rank factors.

``G = X^T X`` over the weighted users x items matrix ``X`` (pair weight = interaction-type strength
times recency decay), ``P = (G + l2 I)^-1``, ``B = -P / diag(P)`` with a zero diagonal; a user with
history ``x`` scores items ``x B``. ``B`` is ``n_items x n_items``, so it is used only up to a cap on the
item count (the candidate plan enforces it).

Export: a randomized truncated SVD ``B ~= U S V^T`` of rank ``rank``: the fold-in table is ``U S`` and the
item vectors are ``V`` (at full rank, ``rank >= n_items``, exactly ``B`` and the identity, no SVD), so the
user tower's weighted mean of the history's fold-in rows times the item vectors is ``x B`` (up to the
scale of the mean, which does not change a user's ranking). A trained user's vector is exactly that
fold-in of their training history: EASE has no per-user parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from training_jobs.data import InteractionGraph, weighted_matrix
from training_jobs.models.base import FixedFactors, user_tower_tables

Matrix = npt.NDArray[np.float32]
MAX_ITEMS = 20_000
"""Item count above which EASE is not offered (``B`` is dense: 20k items = 1.6 GB in float32)."""


@dataclass(frozen=True)
class EASEParams:
    """Hyper-parameters of :func:`fit_ease`."""

    l2: float = 200.0
    rank: int = 256
    seed: int = 0


def symmetric_inverse(matrix: Matrix) -> Matrix:
    """Inverse of a symmetric positive-definite float32 matrix by Cholesky (half the work of LU)."""
    from scipy.linalg import lapack

    factor, info = lapack.spotrf(matrix, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise FloatingPointError(f"EASE Gram matrix is not positive definite (potrf info {info})")
    upper, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise FloatingPointError(f"EASE Gram matrix could not be inverted (potri info {info})")
    full: Matrix = np.triu(upper) + np.triu(upper, 1).T
    return full


def gram_matrix(graph: InteractionGraph) -> Matrix:
    """The dense ``X^T X`` of ``graph``'s weighted matrix (shared by every L2 value of a grid)."""
    if graph.n_items > MAX_ITEMS:
        raise MemoryError(
            f"EASE needs a dense {graph.n_items}^2 matrix; it is offered up to {MAX_ITEMS} items"
        )
    x = weighted_matrix(graph)
    gram: Matrix = np.asarray((x.T @ x).toarray(), dtype=np.float32)
    return gram


def ease_weights(graph: InteractionGraph, l2: float, gram: Matrix | None = None) -> Matrix:
    """The dense EASE item-item matrix ``B`` (zero diagonal); ``gram`` is ``graph``'s when given."""
    regularized = (gram if gram is not None else gram_matrix(graph)).copy()
    regularized[np.diag_indices_from(regularized)] += l2
    precision = symmetric_inverse(regularized)
    weights = precision / (-np.diag(precision))[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights.astype(np.float32)


def truncated_svd(matrix: Matrix, rank: int, seed: int, power_iterations: int = 2) -> tuple[Matrix, Matrix]:
    """``(U S, V)`` of a rank-``rank`` randomized SVD (Halko et al., 2011); exact SVD when rank covers it."""
    n = matrix.shape[0]
    if rank >= n:
        u, s, vt = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
        return (u * s).astype(np.float32), vt.T.astype(np.float32)
    rng = np.random.default_rng(seed)
    width = min(n, rank + 16)
    basis, _ = np.linalg.qr(matrix @ rng.standard_normal((n, width)).astype(np.float32))
    for _ in range(power_iterations):
        basis, _ = np.linalg.qr(matrix.T @ basis)
        basis, _ = np.linalg.qr(matrix @ basis)
    small = (basis.T @ matrix).astype(np.float64)
    u_small, s, vt = np.linalg.svd(small, full_matrices=False)
    u = basis.astype(np.float64) @ u_small[:, :rank]
    return (u * s[:rank]).astype(np.float32), vt[:rank].T.astype(np.float32)


def ease_factors(weights: Matrix, rank: int, seed: int) -> tuple[Matrix, Matrix]:
    """``(fold-in table, item vectors)`` of ``B``: rank ``rank`` SVD factors, or ``(B, I)`` at full rank.

    At full rank the factors are exact and need no decomposition: the fold-in rows are ``B``'s rows and the
    item vectors the identity, so a history's mean row times the item vectors is ``x B`` itself.
    """
    n_items = weights.shape[0]
    if rank >= n_items:
        return weights, np.eye(n_items, dtype=np.float32)
    return truncated_svd(weights, rank, seed)


def fit_ease(graph: InteractionGraph, params: EASEParams, gram: Matrix | None = None) -> FixedFactors:
    """Fit EASE on ``graph`` and return the servable model (see the module docstring).

    ``gram`` is ``graph``'s :func:`gram_matrix` when the caller has it (an L2 grid computes it once).
    """
    weights = ease_weights(graph, params.l2, gram)
    if not np.isfinite(weights).all():
        raise FloatingPointError("EASE weights are not finite; raise l2")
    foldin_np, items_np = ease_factors(weights, params.rank, params.seed)
    foldin, items = torch.as_tensor(foldin_np), torch.as_tensor(items_np)
    x = weighted_matrix(graph)
    totals_np = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
    sums = torch.as_tensor(np.asarray(x @ foldin_np, dtype=np.float32))
    totals = torch.as_tensor(totals_np)
    users = sums / totals.clamp_min(1e-12).unsqueeze(1)
    # blend 1: a known user's recent items replace the stored vector (both are the same fold-in rule)
    return FixedFactors(user_tower_tables(users, foldin, items, sums, totals, blend=1.0))
