"""Small synthetic data for the training tests, with structure a model can learn.

Snapshots in the foundation's raw schema: users belong to latent segments; each segment prefers one
category's items (Zipf-skewed), so collaborative filtering beats popularity. Interaction graphs of
disjoint user communities, a blank catalogue and a validation split for the candidate tests.
Deterministic for a given seed.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from training_jobs.candidate_fit import Holdout
from training_jobs.data import InteractionGraph, build_graph, split_random_holdout
from training_jobs.snapshot import Catalogue

CPU = torch.device("cpu")
WEIGHT_LEVELS = np.array([1.0, 2.0, 4.0], dtype=np.float32)

TYPES = np.array(["view", "click", "add_to_cart", "purchase"])
TYPE_PROBABILITIES = np.array([0.55, 0.25, 0.1, 0.1])
START_MS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)

INTERACTIONS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("interaction_type", pa.string()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("rating", pa.float64()),
        ("source", pa.string()),
        ("position", pa.int32()),
        ("revenue", pa.float64()),
        ("recommendation_id", pa.string()),
        ("ingested_at", pa.timestamp("ms", tz="UTC")),
        ("upload_id", pa.string()),
    ]
)
ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.string()),
        ("brand", pa.string()),
        ("description", pa.string()),
        ("price", pa.float64()),
        ("updated_at", pa.timestamp("ms", tz="UTC")),
    ]
)


def make_items(n_items: int, n_segments: int, seed: int = 0) -> pa.Table:
    """Catalogue: item ``i`` is in category ``i % n_segments``."""
    rng = np.random.default_rng(seed)
    ids = [f"item_{i:05d}" for i in range(n_items)]
    return pa.table(
        {
            "item_id": ids,
            "title": [f"Product {i}" for i in range(n_items)],
            "category": [f"cat_{i % n_segments}" for i in range(n_items)],
            "brand": [f"brand_{(i // n_segments) % 7}" for i in range(n_items)],
            "description": ["" for _ in range(n_items)],
            "price": np.round(rng.lognormal(4.0, 1.0, n_items), 2),
            "updated_at": pa.array([START_MS] * n_items, pa.timestamp("ms", tz="UTC")),
        },
        schema=ITEMS_SCHEMA,
    )


def make_interactions(
    n_users: int,
    n_items: int,
    n_events: int,
    n_segments: int = 8,
    seed: int = 0,
    affinity: float = 0.85,
    types: np.ndarray | None = None,
) -> pa.Table:
    """Events of users in segments; ``affinity`` of them hit the user's segment's category."""
    rng = np.random.default_rng(seed)
    users = np.concatenate([np.arange(n_users), rng.integers(0, n_users, max(0, n_events - n_users))])[
        :n_events
    ]
    segment = users % n_segments
    per_segment = max(1, n_items // n_segments)
    # Zipf-skewed rank inside the segment's category, with a user-specific offset (individual taste)
    rank = np.minimum(rng.zipf(1.4, users.size) - 1 + (users * 7) % 5, per_segment - 1)
    own = segment + n_segments * rank
    random_items = rng.integers(0, n_items, users.size)
    items = np.where(rng.random(users.size) < affinity, own, random_items) % n_items
    kinds = types if types is not None else rng.choice(TYPES, size=users.size, p=TYPE_PROBABILITIES)
    timestamps = START_MS + np.sort(rng.integers(0, 30 * 86_400_000, users.size))
    n = users.size
    return pa.table(
        {
            "event_id": [f"evt_{i}" for i in range(n)],
            "user_id": [f"user_{u:05d}" for u in users],
            "item_id": [f"item_{i:05d}" for i in items],
            "interaction_type": kinds.astype(str).tolist(),
            "timestamp": pa.array(timestamps, pa.timestamp("ms", tz="UTC")),
            "rating": pa.nulls(n, pa.float64()),
            "source": ["web"] * n,
            "position": pa.nulls(n, pa.int32()),
            "revenue": pa.nulls(n, pa.float64()),
            "recommendation_id": pa.nulls(n, pa.string()),
            "ingested_at": pa.array(timestamps, pa.timestamp("ms", tz="UTC")),
            "upload_id": ["upl_1"] * n,
        },
        schema=INTERACTIONS_SCHEMA,
    )


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet bytes."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def community_pairs(
    rng: np.random.Generator, n_users: int, n_items: int, n_pairs: int, groups: int = 2, zipf: float = 1.3
) -> tuple[np.ndarray, np.ndarray]:
    """Repeated (user, item) pairs: user ``u`` takes items of block ``u % groups`` only (Zipf-skewed)."""
    users = rng.integers(0, n_users, n_pairs)
    per_group = n_items // groups
    items = (users % groups) * per_group + np.minimum(rng.zipf(zipf, n_pairs) - 1, per_group - 1)
    return users, items


def two_communities(
    n_users: int = 60, n_items: int = 40, n_pairs: int = 900, *, weighted: bool = False
) -> InteractionGraph:
    """Two disjoint communities: even users take the first half of the items, odd users the second.

    ``weighted`` gives each pair a weight from :data:`WEIGHT_LEVELS` (repeats are merged by ``build_graph``).
    """
    rng = np.random.default_rng(0)
    users, items = community_pairs(rng, n_users, n_items, n_pairs)
    weights = rng.choice(WEIGHT_LEVELS, n_pairs) if weighted else None
    return build_graph(users, items, n_users, n_items, weights)


def blank_catalogue(n_items: int) -> Catalogue:
    """A catalogue of ``n_items`` items in one category, without titles, brands or prices."""
    return Catalogue(
        item_ids=np.array([f"i{i}" for i in range(n_items)]),
        titles=np.array([""] * n_items),
        categories=np.array(["c"] * n_items),
        brands=np.array([""] * n_items),
        prices=np.full(n_items, np.nan),
    )


def validation_split(graph: InteractionGraph) -> tuple[InteractionGraph, Holdout]:
    """A fifth of each user's pairs held out (seed 0): the fit graph and the held-out pairs."""
    fit, users, items = split_random_holdout(graph, 0.2, seed=0)
    return fit, Holdout(users, items)
