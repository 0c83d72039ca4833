"""Graph filtering (GF-CF, Shen et al., 2021) fitted without training and exported as low-rank factors.

The users x items matrix ``R`` (pair weight = interaction-type strength times recency decay) is normalised
by the weighted degrees, ``R~ = D_u^-1/2 R D_i^-1/2``; its top ``rank`` right singular vectors ``V`` (items
x rank, singular values ``s``) span the smoothest signals on the item-item graph ``R~^T R~``. A user with
history row ``x`` scores items

    ``score = x D_i^-beta V diag(s ** spectral_power) V^T D_i^beta``

``spectral_power`` 0 is GF-CF's ideal low-pass filter (GF-CF uses ``beta`` 1/2; on Gowalla it alone, at
rank 1024, ranks as well as GF-CF's full linear + ideal filter on a validation split); 2 is GF-CF's linear
filter ``R~^T R~`` cut to rank ``rank`` (weaker: that filter needs a high rank).

Export (the contract every closed-form model shares): the fold-in table rows are ``phi(j) = d_j^-beta V_j
s^p``, the item vectors ``psi(i) = d_i^beta V_i``; the user tower's weighted mean of the history's rows
times the item vectors is ``score`` up to the mean's scale (a scale does not change a user's ranking). A
trained user's vector is exactly that fold-in of their training history: the filter has no per-user
parameters.

The singular vectors come from a randomized subspace iteration on ``R~^T R~`` (Halko et al., 2011) with
sparse products only, so memory is ``O((n_users + n_items) * rank)`` and no dense item-item matrix is
formed. One basis at the largest rank serves every smaller rank and every ``beta`` without refitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import torch

from training_jobs.data import InteractionGraph, weighted_matrix
from training_jobs.models.base import FixedFactors, user_tower_tables

Matrix = npt.NDArray[np.float32]
Vector = npt.NDArray[np.float64]
OVERSAMPLE = 32
"""Extra columns of the random subspace beyond ``rank`` (the accuracy of the last vectors needs them)."""


@dataclass(frozen=True)
class GraphFilterParams:
    """Hyper-parameters of :func:`fit_graph_filter` (see the module docstring)."""

    rank: int = 1024
    beta: float = 0.5
    spectral_power: float = 0.0
    power_iterations: int = 2
    seed: int = 0


def _inverse_sqrt(degrees: Vector) -> Vector:
    """``d^-1/2`` where ``d > 0``, else 0 (a user or item without pairs contributes nothing)."""
    out = np.zeros_like(degrees)
    positive = degrees > 0
    out[positive] = degrees[positive] ** -0.5
    return out


def normalized_matrix(matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, Vector]:
    """``(D_u^-1/2 R D_i^-1/2, item degrees)`` of a users x items matrix ``R``."""
    user_degrees = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    item_degrees = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
    left = sp.diags(_inverse_sqrt(user_degrees).astype(np.float32))
    right = sp.diags(_inverse_sqrt(item_degrees).astype(np.float32))
    return sp.csr_matrix(left @ matrix @ right, dtype=np.float32), item_degrees


def _orthonormal(basis: npt.NDArray[np.floating]) -> Matrix:
    """An orthonormal basis of the columns' span (Cholesky-free: eigenvectors of the small Gram matrix)."""
    basis64 = np.asarray(basis, dtype=np.float64)
    gram = basis64.T @ basis64
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max(initial=0.0) * 1e-10
    if not keep.any():
        return np.zeros((basis.shape[0], 0), dtype=np.float32)
    orthonormal: Matrix = (basis64 @ (vectors[:, keep] / np.sqrt(values[keep]))).astype(np.float32)
    return orthonormal


def top_right_singular(
    matrix: sp.csr_matrix, rank: int, power_iterations: int, seed: int
) -> tuple[Vector, Matrix]:
    """``(s, V)``: the top ``rank`` singular values and right singular vectors of a sparse matrix.

    Subspace iteration on ``A^T A`` with a Rayleigh-Ritz step at the end; fewer than ``rank`` columns come
    back when the matrix has lower rank.
    """
    n_items = matrix.shape[1]
    width = min(n_items, rank + OVERSAMPLE)
    if width == 0 or matrix.nnz == 0:
        return np.zeros(0), np.zeros((n_items, 0), dtype=np.float32)
    transposed = sp.csr_matrix(matrix.T)
    rng = np.random.default_rng(seed)
    basis = _orthonormal(transposed @ (matrix @ rng.standard_normal((n_items, width)).astype(np.float32)))
    for _ in range(power_iterations):
        basis = _orthonormal(transposed @ (matrix @ basis))
    projected = np.asarray(matrix @ basis, dtype=np.float64)
    values, vectors = np.linalg.eigh(projected.T @ projected)
    order = np.argsort(values)[::-1][:rank]
    values = np.clip(values[order], 0.0, None)
    keep = values > values.max(initial=0.0) * 1e-10
    right = (basis.astype(np.float64) @ vectors[:, order[keep]]).astype(np.float32)
    return np.sqrt(values[keep]), right


@dataclass
class GraphFilterBasis:
    """The singular basis of one graph (re-usable for every rank up to its own, and every ``beta``)."""

    singular: Vector
    vectors: Matrix
    item_degrees: Vector
    weighted: sp.csr_matrix

    @property
    def rank(self) -> int:
        """How many singular vectors the basis holds."""
        return int(self.vectors.shape[1])

    def factors(self, rank: int, beta: float, spectral_power: float) -> tuple[Matrix, Matrix]:
        """``(fold-in table, item vectors)`` of the filter cut to ``rank`` (see the module docstring)."""
        degrees = np.where(self.item_degrees > 0, self.item_degrees, 1.0)
        main = self.vectors[:, :rank]
        gains = np.power(self.singular[:rank], spectral_power)
        foldin = (main * (degrees**-beta)[:, None] * gains[None, :]).astype(np.float32)
        items = (main * (degrees**beta)[:, None]).astype(np.float32)
        if not (np.isfinite(foldin).all() and np.isfinite(items).all()):
            raise FloatingPointError("graph filter factors are not finite")
        return foldin, items

    def model(self, params: GraphFilterParams) -> FixedFactors:
        """The servable model of ``params`` (its rank cut to the basis's)."""
        foldin_np, items_np = self.factors(min(params.rank, self.rank), params.beta, params.spectral_power)
        n_users, n_items = self.weighted.shape
        if foldin_np.shape[1] == 0:  # nothing to filter: one zero column keeps every table two-dimensional
            foldin_np = np.zeros((n_items, 1), dtype=np.float32)
            items_np = np.zeros((n_items, 1), dtype=np.float32)
        totals = torch.as_tensor(np.asarray(self.weighted.sum(axis=1), dtype=np.float32).ravel())
        sums = torch.as_tensor(np.asarray(self.weighted @ foldin_np, dtype=np.float32).reshape(n_users, -1))
        users = sums / totals.clamp_min(1e-12).unsqueeze(1)
        foldin, items = torch.as_tensor(foldin_np), torch.as_tensor(items_np)
        # blend 1: a known user's recent items replace the stored vector (both are the same fold-in rule)
        return FixedFactors(user_tower_tables(users, foldin, items, sums, totals, blend=1.0))


def fit_basis(
    graph: InteractionGraph, rank: int, power_iterations: int = 2, seed: int = 0
) -> GraphFilterBasis:
    """The top ``rank`` singular basis of ``graph``'s normalised matrix."""
    weighted = weighted_matrix(graph)
    normalized, item_degrees = normalized_matrix(weighted)
    singular, vectors = top_right_singular(normalized, rank, power_iterations, seed)
    return GraphFilterBasis(singular, vectors, item_degrees, weighted)


def fit_graph_filter(graph: InteractionGraph, params: GraphFilterParams) -> FixedFactors:
    """Fit the filter on ``graph`` and return the low-rank servable model (see the module docstring)."""
    return fit_basis(graph, params.rank, params.power_iterations, params.seed).model(params)
