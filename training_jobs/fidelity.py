"""Fold-in fidelity: how well users represented only by their history (through the exported ONNX user
tower, as serving runs it) rank their held-out items, relative to the vectors the model trained for them.

``ratio = NDCG@10(fold-in) / NDCG@10(trained vectors)`` on the same hold-out, same masking. Serving folds a
user in from at most ``max_items`` of their most recent items; here the training history is passed the
same way (the graph has no order, so the strongest ``max_items`` pairs are used when a user has more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training_jobs.data import InteractionGraph
from training_jobs.evaluation import Evaluator
from training_jobs.export import ONNX_INPUTS, ONNX_OUTPUT, build_user_tower_onnx
from training_jobs.models.base import Recommender


@dataclass(frozen=True)
class Fidelity:
    """NDCG@10 with trained vectors and with fold-in vectors, and their ratio."""

    trained_ndcg_10: float
    foldin_ndcg_10: float

    @property
    def ratio(self) -> float:
        """Fold-in NDCG@10 over trained NDCG@10 (1.0 when both are 0)."""
        if self.trained_ndcg_10 <= 0:
            return 1.0 if self.foldin_ndcg_10 <= 0 else float("inf")
        return self.foldin_ndcg_10 / self.trained_ndcg_10


def history_batch(graph: InteractionGraph, max_items: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``(item_indices, item_weights)`` [n_users, width] of each user's training pairs, -1 padded."""
    order = np.lexsort((-graph.weights, graph.users))
    users, items, weights = graph.users[order], graph.items[order], graph.weights[order]
    counts = np.bincount(users, minlength=graph.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(users.size) - starts[users]
    keep = rank < max_items
    width = max(1, int(min(counts.max(initial=0), max_items)))
    indices = np.full((graph.n_users, width), -1, dtype=np.int64)
    values = np.zeros((graph.n_users, width), dtype=np.float32)
    indices[users[keep], rank[keep]] = items[keep]
    values[users[keep], rank[keep]] = weights[keep]
    return indices, values


def foldin_user_vectors(model: Recommender, graph: InteractionGraph, max_items: int = 50) -> torch.Tensor:
    """Every user's vector from their training history alone, computed by the exported ONNX tower."""
    import onnxruntime as ort

    session = ort.InferenceSession(
        build_user_tower_onnx(model.export_tables()), providers=["CPUExecutionProvider"]
    )
    indices, values = history_batch(graph, max_items)
    outputs = []
    for start in range(0, graph.n_users, 4096):
        stop = min(start + 4096, graph.n_users)
        feed = {
            ONNX_INPUTS[0]: np.full(stop - start, -1, dtype=np.int64),
            ONNX_INPUTS[1]: indices[start:stop],
            ONNX_INPUTS[2]: values[start:stop],
        }
        outputs.append(np.asarray(session.run([ONNX_OUTPUT], feed)[0], dtype=np.float32))
    return torch.as_tensor(np.concatenate(outputs))


def foldin_fidelity(model: Recommender, graph: InteractionGraph, evaluator: Evaluator) -> Fidelity:
    """Trained vs fold-in NDCG@10 of ``model`` (trained on ``graph``) on ``evaluator``'s hold-out."""
    model.eval()
    trained = evaluator.evaluate(model.score_users)["ndcg_10"]
    _, item_vectors = model.get_embedding()
    folded = foldin_user_vectors(model, graph).to(item_vectors.device)
    items = model.export_tables().item_vectors.to(item_vectors.device).float()
    foldin = evaluator.evaluate(lambda users: folded[users] @ items.T)["ndcg_10"]
    return Fidelity(trained_ndcg_10=trained, foldin_ndcg_10=foldin)
