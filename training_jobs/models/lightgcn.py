"""LightGCN (He et al., 2020) with BPR or softmax training, all sampling and propagation on the device.

Propagation: ``E_{k+1} = A_hat E_k`` with ``A_hat = D^-1/2 A D^-1/2`` over the bipartite user-item graph
(edge weights = interaction-type strengths, 1 when unweighted); final embedding = mean of layers 0..K.

Losses (``loss_type``):
- ``bpr``: the paper's pairwise loss with ``num_negatives`` uniform negatives per positive.
- ``softmax``: cross-entropy of the positive against all items (``num_negatives`` 0 or >= items) or against
  ``num_negatives`` uniform negatives shared by the batch (sampled softmax, log-Q corrected), with
  temperature ``temperature``; optionally on L2-normalised embeddings (cosine). Converges in tens of
  epochs instead of the ~1000 that BPR needs.
Both add the paper's L2 penalty on the ego (layer-0) embeddings of the batch.

Initialisation (``init``): ``normal`` (the paper's), or ``spectral`` (:func:`spectral_ego`: the
propagated embeddings start as the rank-``embedding_dim`` ideal low-pass graph filter ``R~ V V^T``, so a
few epochs fine-tune a good model instead of shaping noise; what makes LightGCN affordable on a CPU,
where every step propagates over the whole graph).

Propagation is one autograd node (:func:`propagate`): the normalised adjacency is symmetric, so the
backward pass is the same propagation of the gradient, with buffers accumulated in place.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from training_jobs.models.base import (
    EdgeRecommender,
    UserTowerTables,
    user_tower_tables,
    weighted_row_sums,
)
from training_jobs.models.graph_filter import normalized_matrix, top_right_singular

LossType = Literal["bpr", "softmax"]
InitType = Literal["normal", "spectral"]


def normalized_adjacency(
    edge_users: torch.Tensor,
    edge_items: torch.Tensor,
    n_users: int,
    n_items: int,
    edge_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric-normalised bipartite adjacency ``D^-1/2 A D^-1/2`` as a sparse CSR tensor.

    Nodes ``0..n_users-1`` are users, ``n_users..n_users+n_items-1`` items. Isolated nodes get zero rows.
    """
    device = edge_users.device
    if edge_weights is None:
        edge_weights = torch.ones(edge_users.numel(), device=device)
    n_nodes = n_users + n_items
    rows = torch.cat([edge_users, edge_items + n_users])
    cols = torch.cat([edge_items + n_users, edge_users])
    values = torch.cat([edge_weights, edge_weights]).float()
    degree = torch.zeros(n_nodes, device=device).index_add_(0, rows, values)
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(degree))
    values = inv_sqrt[rows] * values * inv_sqrt[cols]
    coo = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), values, (n_nodes, n_nodes), check_invariants=False
    ).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.to_sparse_csr()


def _layer_mean(adjacency: torch.Tensor, dense: torch.Tensor, num_layers: int) -> torch.Tensor:
    """``mean(A^k X for k = 0..K)``, accumulated in place: three ``X``-sized buffers whatever ``K``."""
    total = dense.clone()
    layer = dense
    for _ in range(num_layers):
        layer = adjacency @ layer
        total.add_(layer)
    return total.div_(num_layers + 1)


class _LayerMeanPropagation(torch.autograd.Function):
    """The whole propagation as one autograd node.

    ``S = mean(A^k)`` is symmetric when ``A`` is, so the backward pass is the same propagation of the
    gradient. Nothing is saved for backward but ``A``; the layer-by-layer autograd graph it replaces kept
    every layer alive and allocated (and page-faulted in) a fresh ``n_nodes x D`` tensor per add, per
    division and per gradient, at every step.
    """

    @staticmethod
    def forward(ctx: Any, adjacency: torch.Tensor, ego: torch.Tensor, num_layers: int) -> torch.Tensor:
        ctx.adjacency = adjacency
        ctx.num_layers = num_layers
        return _layer_mean(adjacency, ego, num_layers)

    @staticmethod
    def backward(ctx: Any, *grad_outputs: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        return None, _layer_mean(ctx.adjacency, grad_outputs[0], ctx.num_layers), None


def spectral_ego(
    edge_users: torch.Tensor,
    edge_items: torch.Tensor,
    edge_weights: torch.Tensor,
    n_users: int,
    n_items: int,
    embedding_dim: int,
    num_layers: int,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ego embeddings (users, items) whose propagation is the rank-``embedding_dim`` graph filter.

    With ``R~ = D_u^-1/2 R D_i^-1/2 = U diag(s) V^T`` (top singular triplets), ``[U; V]`` and ``[U; -V]``
    are eigenvectors of the normalised bipartite adjacency with eigenvalues ``s`` and ``-s``, so
    propagation scales them by ``p(s)`` and ``p(-s)``, ``p(x) = mean(x^k, k = 0..num_layers)``. Egos
    ``a [U; V] + b [U; -V]`` with ``a = (s + 1) / 2p(s)`` and ``b = (s - 1) / 2p(-s)`` therefore propagate
    to users ``U diag(s) = R~ V`` and items ``V``: the model starts out as the ideal low-pass filter
    ``R~ V V^T`` (the graph filter candidate's rule, at this rank) instead of noise, and training
    fine-tunes it. Columns beyond the graph's rank are drawn from a normal distribution at the spectral
    columns' typical row size (a zero column would get zero gradient forever).
    """
    matrix = sp.csr_matrix(
        (edge_weights.double().cpu().numpy(), (edge_users.cpu().numpy(), edge_items.cpu().numpy())),
        shape=(n_users, n_items),
    )
    normalized, _ = normalized_matrix(matrix)
    singular, items_np = top_right_singular(normalized, embedding_dim, power_iterations=2, seed=seed)
    rank = singular.size
    gain = sum(singular**k for k in range(num_layers + 1)) / (num_layers + 1)
    gain_negative = sum((-singular) ** k for k in range(num_layers + 1)) / (num_layers + 1)
    same = (singular + 1) / (2 * gain)
    # p(-s) vanishes only at s = 1 for odd num_layers, where s - 1 vanishes too: that part is zero
    safe = np.abs(gain_negative) > 1e-12
    opposite = np.where(safe, (singular - 1) / (2 * np.where(safe, gain_negative, 1.0)), 0.0)
    left = np.asarray(normalized @ items_np, dtype=np.float64) / np.maximum(singular, 1e-12)
    scale = math.sqrt(2.0 / (n_users + n_items))
    users = torch.randn(n_users, embedding_dim, dtype=torch.float64) * scale
    items = torch.randn(n_items, embedding_dim, dtype=torch.float64) * scale
    users[:, :rank] = torch.as_tensor(left * (same + opposite))
    items[:, :rank] = torch.as_tensor(items_np.astype(np.float64) * (same - opposite))
    return users.float(), items.float()


def propagate(adjacency: torch.Tensor, ego: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Layer-mean LightGCN propagation of ``ego`` [n_nodes, D] over the symmetric ``adjacency``."""
    if not ego.requires_grad:
        return _layer_mean(adjacency, ego, num_layers)
    out: torch.Tensor = _LayerMeanPropagation.apply(adjacency, ego, num_layers)  # type: ignore[no-untyped-call]
    return out


class LightGCN(EdgeRecommender):
    """LightGCN over a fixed training graph; see the module docstring for losses."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        edge_users: torch.Tensor,
        edge_items: torch.Tensor,
        edge_weights: torch.Tensor | None = None,
        embedding_dim: int = 64,
        num_layers: int = 3,
        loss_type: LossType = "softmax",
        num_negatives: int = 0,
        temperature: float = 0.2,
        normalize: bool = False,
        reg_weight: float = 1e-4,
        foldin_blend: float = 0.5,
        init_std: float = 0.1,
        init: InitType = "normal",
    ) -> None:
        if loss_type == "bpr" and num_negatives < 1:
            raise ValueError("bpr needs num_negatives >= 1")
        super().__init__(
            n_users,
            n_items,
            edge_users,
            edge_items,
            edge_weights,
            embedding_dim=embedding_dim,
            temperature=temperature,
            normalize=normalize,
            reg_weight=reg_weight,
            foldin_blend=foldin_blend,
        )
        self.num_layers = num_layers
        self.loss_type: LossType = loss_type
        self.num_negatives = num_negatives
        self.init: InitType = init
        if init == "spectral":
            users, items = spectral_ego(
                self.edge_users,
                self.edge_items,
                self.edge_weights,
                n_users,
                n_items,
                embedding_dim,
                num_layers,
            )
            # the same mean squared row norm as the normal init, so temperature and LR mean the same
            mean_square = torch.cat([users, items]).pow(2).sum(1).mean().clamp_min(1e-24)
            scale = init_std * math.sqrt(embedding_dim) / mean_square.sqrt()
            with torch.no_grad():
                self.user_embedding.weight.copy_(users * scale)
                self.item_embedding.weight.copy_(items * scale)
        else:
            nn.init.normal_(self.user_embedding.weight, std=init_std)
            nn.init.normal_(self.item_embedding.weight, std=init_std)
        self._adjacency: torch.Tensor | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _apply(self, fn: Any, recurse: bool = True) -> LightGCN:
        # moving the module (.to(device)) invalidates the adjacency and the cached embeddings
        self._adjacency = None
        self._cache = None
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        return self

    @property
    def adjacency(self) -> torch.Tensor:
        """The normalised adjacency on the module's device (built lazily, once per device)."""
        if self._adjacency is None:
            self._adjacency = normalized_adjacency(
                self.edge_users, self.edge_items, self.n_users, self.n_items, self.edge_weights
            )
        return self._adjacency

    def train(self, mode: bool = True) -> LightGCN:
        self._cache = None
        super().train(mode)
        return self

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (user, item) embeddings, differentiable w.r.t. the ego embeddings."""
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        final = propagate(self.adjacency, ego, self.num_layers)
        users, items = final[: self.n_users], final[self.n_users :]
        if self.normalize:
            users, items = F.normalize(users, dim=-1), F.normalize(items, dim=-1)
        return users, items

    def get_embedding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final embeddings; cached in eval mode (the graph and weights are fixed there)."""
        if self.training:
            return self.propagate()
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.propagate()
        return self._cache

    def _ego_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        user_ego: torch.Tensor = self.user_embedding(users)
        item_ego: torch.Tensor = self.item_embedding(items)
        return 0.5 * (user_ego.pow(2).sum() + item_ego.pow(2).sum()) / users.numel()

    def loss(self, users: torch.Tensor, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Batch loss for positive pairs (users, items), each weighted by ``weights`` (mean 1)."""
        user_emb, item_emb = self.propagate()
        u = user_emb[users]
        if self.loss_type == "bpr":
            negatives = torch.randint(
                0, self.n_items, (users.numel(), self.num_negatives), device=users.device
            )
            pos = (u * item_emb[items]).sum(-1, keepdim=True)
            neg = torch.einsum("bd,bnd->bn", u, item_emb[negatives])
            per_pair = -F.logsigmoid(pos - neg).mean(dim=1)
            reg_items = torch.cat([items, negatives.reshape(-1)])
            penalty = self._ego_penalty(users, reg_items)
        else:
            per_pair = self._softmax_loss(u, item_emb, items)
            penalty = self._ego_penalty(users, items)
        return (per_pair * weights).mean() + self.reg_weight * penalty

    def _softmax_loss(self, u: torch.Tensor, item_emb: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.num_negatives == 0 or self.num_negatives >= self.n_items:
            logits = (u @ item_emb.T) / self.temperature
            return F.cross_entropy(logits, items, reduction="none")
        negatives = torch.randint(0, self.n_items, (self.num_negatives,), device=u.device)
        pos = (u * item_emb[items]).sum(-1, keepdim=True)
        neg = u @ item_emb[negatives].T
        # uniform proposal: log-Q correction is the constant log(n_items / num_negatives)
        neg = neg.masked_fill(negatives.unsqueeze(0) == items.unsqueeze(1), float("-inf"))
        correction = math.log(self.n_items / self.num_negatives)
        logits = torch.cat([pos, neg + correction * self.temperature], dim=1) / self.temperature
        return -F.log_softmax(logits, dim=1)[:, 0]

    @torch.no_grad()
    def export_tables(self) -> UserTowerTables:
        """Known users keep their final vector; unknown users fold in as a weighted mean of item vectors.

        The fold-in is scaled so its mean norm over training users matches the trained user vectors'.
        """
        was_training = self.training
        self.eval()
        user_emb, item_emb = self.get_embedding()
        sums, counts = weighted_row_sums(
            self.edge_users, self.edge_items, self.edge_weights, item_emb, self.n_users
        )
        tables = user_tower_tables(user_emb, item_emb, item_emb, sums, counts, self.foldin_blend)
        self.train(was_training)
        return tables
