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
