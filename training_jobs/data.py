"""Index-space interaction data shared by every model: the bipartite user-item graph and its hold-outs.

Everything here works on integer indices (users ``0..n_users-1``, items ``0..n_items-1``); mapping the
tenant's string ids to indices is the job of :mod:`training_jobs.snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class InteractionGraph:
    """Unique (user, item) pairs with a positive weight each (interaction-type strength)."""

    n_users: int
    n_items: int
    users: IntArray
    items: IntArray
    weights: FloatArray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def __post_init__(self) -> None:
        if self.weights.size == 0 and self.users.size:
            object.__setattr__(self, "weights", np.ones(self.users.size, dtype=np.float32))
        if not (self.users.shape == self.items.shape == self.weights.shape):
            raise ValueError("users, items and weights must have the same shape")

    @property
    def n_edges(self) -> int:
        """Number of unique (user, item) pairs."""
        return int(self.users.size)

    def item_counts(self) -> IntArray:
        """Number of users per item (the popularity used by the baseline)."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)


def dedupe_pairs(
    users: IntArray, items: IntArray, weights: FloatArray | None, n_items: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Collapse repeated (user, item) pairs, keeping the largest weight; result sorted by user, item."""
    if weights is None:
        weights = np.ones(users.size, dtype=np.float32)
    key = users.astype(np.int64) * int(n_items) + items.astype(np.int64)
    order = np.lexsort((-weights, key))
    key_sorted = key[order]
    first = np.ones(key_sorted.size, dtype=bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    keep = order[first]
    return (
        users[keep].astype(np.int64),
        items[keep].astype(np.int64),
        weights[keep].astype(np.float32),
    )


def build_graph(
    users: IntArray, items: IntArray, n_users: int, n_items: int, weights: FloatArray | None = None
) -> InteractionGraph:
    """An :class:`InteractionGraph` of unique pairs from possibly repeated ones."""
    u, i, w = dedupe_pairs(users, items, weights, n_items)
    return InteractionGraph(n_users=n_users, n_items=n_items, users=u, items=i, weights=w)


def read_lightgcn_file(path: Path) -> tuple[IntArray, IntArray]:
    """Read one LightGCN-format file (``user item item ...`` per line) into (users, items) arrays."""
    user_parts: list[IntArray] = []
    item_parts: list[IntArray] = []
    with path.open() as handle:
        for line in handle:
            values = line.split()
            if len(values) < 2:
                continue
            row = np.asarray(values, dtype=np.int64)
            user_parts.append(np.full(row.size - 1, row[0], dtype=np.int64))
            item_parts.append(row[1:])
    if not user_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(user_parts), np.concatenate(item_parts)


@dataclass(frozen=True)
class LightGCNDataset:
    """A public benchmark data set in LightGCN's ``train.txt`` / ``test.txt`` format."""

    train: InteractionGraph
    test_users: IntArray
    test_items: IntArray


def load_lightgcn_dataset(directory: Path) -> LightGCNDataset:
    """Load ``train.txt`` and ``test.txt`` from ``directory`` (index space shared by both)."""
    train_u, train_i = read_lightgcn_file(directory / "train.txt")
    test_u, test_i = read_lightgcn_file(directory / "test.txt")
    n_users = int(max(train_u.max(initial=-1), test_u.max(initial=-1)) + 1)
    n_items = int(max(train_i.max(initial=-1), test_i.max(initial=-1)) + 1)
    train = build_graph(train_u, train_i, n_users, n_items)
    return LightGCNDataset(train=train, test_users=test_u, test_items=test_i)


def split_random_holdout(
    graph: InteractionGraph, fraction: float, seed: int
) -> tuple[InteractionGraph, IntArray, IntArray]:
    """Hold out ``fraction`` of each user's pairs at random (users with < 2 pairs keep all).

    Used to cut a validation split from a benchmark's ``train.txt`` (which has no timestamps), so
    hyper-parameters are never chosen on the test split.
    """
    rng = np.random.default_rng(seed)
    n = graph.n_edges
    order = np.lexsort((rng.random(n), graph.users))
    users_sorted = graph.users[order]
    counts = np.bincount(graph.users, minlength=graph.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[users_sorted]
    n_hold = np.where(counts >= 2, np.maximum(1, np.floor(counts * fraction)), 0).astype(np.int64)
    hold_sorted = rank < n_hold[users_sorted]
    hold = np.zeros(n, dtype=bool)
    hold[order] = hold_sorted
    train = InteractionGraph(
        n_users=graph.n_users,
        n_items=graph.n_items,
        users=graph.users[~hold],
        items=graph.items[~hold],
        weights=graph.weights[~hold],
    )
    return train, graph.users[hold], graph.items[hold]


def weighted_matrix(graph: InteractionGraph) -> sp.csr_matrix:
    """Users x items CSR with the pair weights."""
    matrix = sp.csr_matrix(
        (graph.weights.astype(np.float32), (graph.users, graph.items)),
        shape=(graph.n_users, graph.n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    return matrix
