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
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from training_jobs.models.base import (
    EdgeRecommender,
    UserTowerTables,
    user_tower_tables,
    weighted_row_sums,
)

LossType = Literal["bpr", "softmax"]


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


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a symmetric sparse ``A``: the backward pass reuses ``A`` (no transpose needed)."""

    @staticmethod
    def forward(ctx: Any, adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return adjacency @ dense

    @staticmethod
    def backward(ctx: Any, *grad_outputs: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.adjacency @ grad_outputs[0]


def propagate(adjacency: torch.Tensor, ego: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Layer-mean LightGCN propagation of ``ego`` [n_nodes, D] over ``adjacency``."""
    layer = ego
    total = ego
    for _ in range(num_layers):
        layer = _SymmetricSpMM.apply(adjacency, layer)  # type: ignore[no-untyped-call]
        total = total + layer
    return total / (num_layers + 1)


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
