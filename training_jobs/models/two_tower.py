"""Two-tower retrieval model: user tower (id + weighted mean of the user's items), item tower (id + features).

Item tower: ``v_i = normalize(id_i + category_c + brand_b + price_bucket_p)`` (``normalize`` optional).
User tower: ``u = normalize(user_id_u + W h_u)`` where ``h_u`` is the weighted mean of the item vectors of the
user's training items; during training the target item is removed from its own history (no leakage).
Loss: in-batch softmax with temperature, log-Q corrected for item popularity (Yi et al., 2019); pairs of the
batch that share the target item are not used as negatives of each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training_jobs.models.base import EdgeRecommender, UserTowerTables, user_tower_tables


class TwoTower(EdgeRecommender):
    """Two-tower model over the training pairs and integer item features."""

    item_categories: torch.Tensor
    item_brands: torch.Tensor
    item_price_buckets: torch.Tensor
    sorted_keys: torch.Tensor
    sorted_weights: torch.Tensor
    log_q: torch.Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        edge_users: torch.Tensor,
        edge_items: torch.Tensor,
        item_categories: torch.Tensor,
        item_brands: torch.Tensor,
        item_price_buckets: torch.Tensor,
        edge_weights: torch.Tensor | None = None,
        embedding_dim: int = 64,
        temperature: float = 0.1,
        normalize: bool = True,
        reg_weight: float = 0.0,
        foldin_blend: float = 0.5,
        init_std: float = 0.1,
    ) -> None:
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
        self.category_embedding = nn.Embedding(int(item_categories.max()) + 1, embedding_dim)
        self.brand_embedding = nn.Embedding(int(item_brands.max()) + 1, embedding_dim)
        self.price_embedding = nn.Embedding(int(item_price_buckets.max()) + 1, embedding_dim)
        self.history_projection = nn.Linear(embedding_dim, embedding_dim, bias=False)
        for table in (
            self.user_embedding,
            self.item_embedding,
            self.category_embedding,
            self.brand_embedding,
            self.price_embedding,
        ):
            nn.init.normal_(table.weight, std=init_std)
        nn.init.eye_(self.history_projection.weight)
        self.register_buffer("item_categories", item_categories.long(), persistent=False)
        self.register_buffer("item_brands", item_brands.long(), persistent=False)
        self.register_buffer("item_price_buckets", item_price_buckets.long(), persistent=False)
        keys = self.edge_users * n_items + self.edge_items
        order = torch.argsort(keys)
        self.register_buffer("sorted_keys", keys[order], persistent=False)
        self.register_buffer("sorted_weights", self.edge_weights[order], persistent=False)
        popularity = torch.zeros(n_items).index_add_(0, edge_items.long(), torch.ones(edge_items.numel()))
        self.register_buffer(
            "log_q", torch.log((popularity + 1.0) / (popularity.sum() + n_items)), persistent=False
        )

    def item_vectors(self) -> torch.Tensor:
        """Item tower output for every item, [n_items, D] (unit length)."""
        raw = (
            self.item_embedding.weight
            + self.category_embedding(self.item_categories)
            + self.brand_embedding(self.item_brands)
            + self.price_embedding(self.item_price_buckets)
        )
        return F.normalize(raw, dim=-1) if self.normalize else raw

    def _history(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-user weighted sums of item vectors and of weights over the training pairs."""
        sums = torch.zeros(self.n_users, items.shape[1], device=items.device).index_add_(
            0, self.edge_users, items[self.edge_items] * self.edge_weights.unsqueeze(1)
        )
        totals = torch.zeros(self.n_users, device=items.device).index_add_(
            0, self.edge_users, self.edge_weights
        )
        return sums, totals

    def _user_vectors(self, users: torch.Tensor, history_mean: torch.Tensor) -> torch.Tensor:
        raw = self.user_embedding(users) + self.history_projection(history_mean)
        return F.normalize(raw, dim=-1) if self.normalize else raw

    def get_embedding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors (with each user's full training history) and item vectors."""
        items = self.item_vectors()
        sums, totals = self._history(items)
        mean = sums / totals.clamp_min(1e-12).unsqueeze(1)
        users = self._user_vectors(torch.arange(self.n_users, device=items.device), mean)
        return users, items

    def loss(self, users: torch.Tensor, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """In-batch softmax over the batch's items, the target removed from its user's history."""
        all_items = self.item_vectors()
        sums, totals = self._history(all_items)
        target = all_items[items]
        pair_weight = self._pair_weights(users, items)
        rest = (totals[users] - pair_weight).clamp_min(1e-12).unsqueeze(1)
        history = (sums[users] - target * pair_weight.unsqueeze(1)) / rest
        user_vec = self._user_vectors(users, history)
        logits = (user_vec @ target.T) / self.temperature - self.log_q[items].unsqueeze(0)
        same = items.unsqueeze(0) == items.unsqueeze(1)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
        labels = torch.arange(users.numel(), device=users.device)
        per_pair = F.cross_entropy(logits, labels, reduction="none")
        user_ego: torch.Tensor = self.user_embedding(users)
        penalty = user_ego.pow(2).sum() / users.numel()
        return (per_pair * weights).mean() + self.reg_weight * penalty

    def _pair_weights(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # the trainer passes normalised weights; the history needs the raw edge weight of each pair
        wanted = users * self.n_items + items
        position = torch.searchsorted(self.sorted_keys, wanted).clamp_max(self.sorted_keys.numel() - 1)
        found = self.sorted_keys[position] == wanted
        return torch.where(
            found, self.sorted_weights[position], torch.zeros_like(self.sorted_weights[position])
        )

    @torch.no_grad()
    def export_tables(self) -> UserTowerTables:
        """User table = tower output with full history; fold-in table = projected item vectors."""
        was_training = self.training
        self.eval()
        users, items = self.get_embedding()
        foldin = self.history_projection(items)
        sums, totals = self._history(foldin)
        tables = user_tower_tables(users, foldin, items, sums, totals, self.foldin_blend)
        self.train(was_training)
        return tables
