"""The seams every embedding recommender of the training job offers (trainer, evaluation, export)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UserTowerTables:
    """What the exported user tower needs: per-user vectors, per-item fold-in vectors and the blend.

    ``user_vector = known * (1 - has_items * blend) * user_table[u]
    + has_items * (known * blend + (1 - known)) * foldin_scale * weighted_mean(foldin_table[items])``
    """

    user_table: torch.Tensor
    foldin_table: torch.Tensor
    item_vectors: torch.Tensor
    foldin_scale: float
    blend: float


#: Training pairs gathered at once by :func:`weighted_row_sums` (x dims floats: 32 MiB at 32 dims).
ROW_SUM_CHUNK = 1 << 18


def weighted_row_sums(
    rows: torch.Tensor, cols: torch.Tensor, weights: torch.Tensor, table: torch.Tensor, n_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, ``sum w * table[col]`` over the (row, col, w) pairs and ``sum w``.

    The pairs are gathered :data:`ROW_SUM_CHUNK` at a time, so the pairs x dims product (640 MB at 5M
    pairs and 32 dims) is never held whole.
    """
    sums = torch.zeros((n_rows, table.shape[1]), dtype=table.dtype, device=table.device)
    totals = torch.zeros(n_rows, dtype=table.dtype, device=table.device)
    for start in range(0, rows.numel(), ROW_SUM_CHUNK):
        part = slice(start, start + ROW_SUM_CHUNK)
        weight = weights[part].to(table.dtype)
        sums.index_add_(0, rows[part], table[cols[part]] * weight.unsqueeze(1))
        totals.index_add_(0, rows[part], weight)
    return sums, totals


def user_tower_tables(
    user_table: torch.Tensor,
    foldin_table: torch.Tensor,
    item_vectors: torch.Tensor,
    history_sums: torch.Tensor,
    history_totals: torch.Tensor,
    blend: float,
    *,
    copy: bool = True,
) -> UserTowerTables:
    """The export tables, with the fold-in scaled so folded-in users have trained users' average norm.

    ``history_sums`` / ``history_totals`` are each user's weighted sum of ``foldin_table`` rows over
    their training history and the weights' total (users without history are left out of the scale).
    ``copy=False`` keeps the given tensors (for a caller whose tables nothing else changes, such as
    several ALS variants sharing one fit's user factors).
    """
    has = history_totals > 0
    # norms per row first: no users x dims temporaries (norm(s / t) = norm(s) / t for t > 0)
    folded_norm = (history_sums.norm(dim=1)[has] / history_totals[has]).mean().item()
    scale = user_table.norm(dim=1)[has].mean().item() / folded_norm if folded_norm > 0 else 1.0

    def kept(table: torch.Tensor) -> torch.Tensor:
        return table.detach().clone() if copy else table.detach()

    return UserTowerTables(
        user_table=kept(user_table),
        foldin_table=kept(foldin_table),
        item_vectors=kept(item_vectors),
        foldin_scale=float(scale),
        blend=blend,
    )


class Recommender(nn.Module):
    """Base class: subclasses implement :meth:`get_embedding`, :meth:`loss` and :meth:`export_tables`."""

    n_users: int
    n_items: int

    def get_embedding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (user, item) embedding matrices used for scoring."""
        raise NotImplementedError

    def loss(self, users: torch.Tensor, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Training loss of one batch of positive (user, item) pairs with per-pair weights."""
        raise NotImplementedError

    def export_tables(self) -> UserTowerTables:
        """Tables for the ONNX user tower and the item index (see :class:`UserTowerTables`)."""
        raise NotImplementedError

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (inner products) of (user, item) pairs."""
        user_emb, item_emb = self.get_embedding()
        return (user_emb[users] * item_emb[items]).sum(dim=-1)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` against every item, shape [len(users), n_items]."""
        user_emb, item_emb = self.get_embedding()
        return user_emb[users] @ item_emb.T

    @torch.no_grad()
    def recommend(
        self, users: torch.Tensor, k: int, exclude: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` (scores, item indices) per user; ``exclude`` is a bool mask [len(users), n_items]."""
        scores = self.score_users(users)
        if exclude is not None:
            scores = scores.masked_fill(exclude, float("-inf"))
        values, indices = torch.topk(scores, k=min(k, self.n_items), dim=1)
        return values, indices


class EdgeRecommender(Recommender):
    """A recommender learnt from the weighted training pairs (the graph's edges) with id embeddings.

    Holds what LightGCN and the two-tower model share: the loss hyperparameters, one embedding per user
    and per item (initialised by the subclass, so each keeps its own order of random draws) and the
    edges as non-persistent buffers (missing weights count 1).
    """

    edge_users: torch.Tensor
    edge_items: torch.Tensor
    edge_weights: torch.Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        edge_users: torch.Tensor,
        edge_items: torch.Tensor,
        edge_weights: torch.Tensor | None,
        *,
        embedding_dim: int,
        temperature: float,
        normalize: bool,
        reg_weight: float,
        foldin_blend: float,
    ) -> None:
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items
        self.temperature = temperature
        self.normalize = normalize
        self.reg_weight = reg_weight
        self.foldin_blend = foldin_blend
        self.user_embedding = nn.Embedding(n_users, embedding_dim)
        self.item_embedding = nn.Embedding(n_items, embedding_dim)
        self.register_buffer("edge_users", edge_users.long(), persistent=False)
        self.register_buffer("edge_items", edge_items.long(), persistent=False)
        weights = edge_weights if edge_weights is not None else torch.ones(edge_users.numel())
        self.register_buffer("edge_weights", weights.float(), persistent=False)


class FixedFactors(Recommender):
    """A model fitted in closed form (ALS, EASE): fixed user/item vectors and its export tables.

    It has no trainable parameters and no loss; scoring and evaluation are those of every other model.
    """

    user_vectors: torch.Tensor
    item_vectors: torch.Tensor

    def __init__(self, tables: UserTowerTables, user_vectors: torch.Tensor | None = None) -> None:
        super().__init__()
        self.n_users = int(tables.user_table.shape[0])
        self.n_items = int(tables.item_vectors.shape[0])
        self.tables = tables
        users = tables.user_table if user_vectors is None else user_vectors
        # the tables are the model's own copies (user_tower_tables cloned them): shared, not copied again
        self.register_buffer("user_vectors", users.detach().float(), persistent=False)
        self.register_buffer("item_vectors", tables.item_vectors.detach().float(), persistent=False)

    def get_embedding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fitted (user, item) vectors."""
        return self.user_vectors, self.item_vectors

    def loss(self, users: torch.Tensor, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:  # noqa: ARG002
        """Closed-form models are not trained by gradient steps."""
        raise TypeError(f"{type(self).__name__} is fitted in closed form; it has no training loss")

    def export_tables(self) -> UserTowerTables:
        """The tables computed when the model was fitted."""
        return self.tables
