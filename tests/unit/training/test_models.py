"""LightGCN and two-tower on tiny graphs: adjacency, shapes, losses, recommend, export tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training_jobs.data import build_graph, split_random_holdout
from training_jobs.models.lightgcn import LightGCN, normalized_adjacency, propagate, spectral_ego
from training_jobs.models.two_tower import TwoTower
from training_jobs.trainer import TrainSettings, learning_rate_at, train_model

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# users 0,1,2; items 0,1,2,3
EDGE_USERS = torch.tensor([0, 0, 1, 2, 2, 2])
EDGE_ITEMS = torch.tensor([0, 1, 1, 1, 2, 3])


def _lightgcn(**kwargs: object) -> LightGCN:
    torch.manual_seed(0)
    return LightGCN(3, 4, EDGE_USERS, EDGE_ITEMS, embedding_dim=8, **kwargs).to(DEVICE)  # type: ignore[arg-type]


def test_normalized_adjacency_matches_dense_formula() -> None:
    # Given a tiny bipartite graph
    adjacency = normalized_adjacency(EDGE_USERS, EDGE_ITEMS, 3, 4).to_dense()
    # Then it equals D^-1/2 A D^-1/2 of the dense bipartite adjacency
    dense = torch.zeros(7, 7)
    for u, i in zip(EDGE_USERS.tolist(), EDGE_ITEMS.tolist(), strict=True):
        dense[u, 3 + i] = dense[3 + i, u] = 1.0
    inv_sqrt = dense.sum(1).rsqrt()
    expected = inv_sqrt[:, None] * dense * inv_sqrt[None, :]
    torch.testing.assert_close(adjacency, expected)
    torch.testing.assert_close(adjacency, adjacency.T)
    # user 0 (degree 2) - item 1 (degree 3)
    assert adjacency[0, 4].item() == pytest.approx(1 / np.sqrt(6))


def test_weighted_adjacency_uses_weighted_degrees() -> None:
    weights = torch.tensor([4.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    adjacency = normalized_adjacency(EDGE_USERS, EDGE_ITEMS, 3, 4, weights).to_dense()
    # user 0: weighted degree 5; item 0: weighted degree 4
    assert adjacency[0, 3].item() == pytest.approx(4 / np.sqrt(5 * 4))


def test_propagation_is_layer_mean() -> None:
    adjacency = normalized_adjacency(EDGE_USERS, EDGE_ITEMS, 3, 4)
    ego = torch.randn(7, 5)
    dense = adjacency.to_dense()
    expected = (ego + dense @ ego + dense @ dense @ ego) / 3
    torch.testing.assert_close(propagate(adjacency, ego, 2), expected, rtol=1e-5, atol=1e-6)


def test_propagation_gradient_matches_dense() -> None:
    adjacency = normalized_adjacency(EDGE_USERS, EDGE_ITEMS, 3, 4)
    ego = torch.randn(7, 5, requires_grad=True)
    propagate(adjacency, ego, 3).pow(2).sum().backward()  # type: ignore[no-untyped-call]
    sparse_grad = ego.grad
    ego_dense = ego.detach().clone().requires_grad_(True)
    dense = adjacency.to_dense()
    layer, total = ego_dense, ego_dense
    for _ in range(3):
        layer = dense @ layer
        total = total + layer
    (total / 4).pow(2).sum().backward()  # type: ignore[no-untyped-call]
    torch.testing.assert_close(sparse_grad, ego_dense.grad, rtol=1e-5, atol=1e-6)


def test_propagation_without_gradient_is_the_same_operator() -> None:
    adjacency = normalized_adjacency(EDGE_USERS, EDGE_ITEMS, 3, 4)
    ego = torch.randn(7, 5)
    with_grad = propagate(adjacency, ego.clone().requires_grad_(True), 3)
    assert with_grad.grad_fn is not None
    torch.testing.assert_close(propagate(adjacency, ego, 3), with_grad.detach())
    # the input is not modified by the in-place accumulation
    torch.testing.assert_close(propagate(adjacency, ego, 0), ego)


# users 0..4, items 0..3: R~ has full rank 4
SPECTRAL_USERS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4, 4, 4])
SPECTRAL_ITEMS = torch.tensor([0, 1, 1, 2, 2, 3, 0, 0, 1, 3])


def _normalized_dense() -> torch.Tensor:
    dense = torch.zeros(5, 4, dtype=torch.float64)
    dense[SPECTRAL_USERS, SPECTRAL_ITEMS] = 1.0
    return dense / dense.sum(1, keepdim=True).sqrt() / dense.sum(0, keepdim=True).sqrt()


@pytest.mark.parametrize("rank", [2, 4])
def test_spectral_init_propagates_to_the_ideal_low_pass_filter(rank: int) -> None:
    # Given LightGCN initialised from the top-`rank` singular vectors of R~ = D_u^-1/2 R D_i^-1/2
    model = LightGCN(5, 4, SPECTRAL_USERS, SPECTRAL_ITEMS, embedding_dim=rank, num_layers=3, init="spectral")
    # When the initial ego embeddings are propagated over the graph
    users, items = (emb.double() for emb in model.eval().get_embedding())
    # Then the scores are those of the graph filter R~ V V^T (up to one global scale)
    normalized = _normalized_dense()
    _, _, vt = torch.linalg.svd(normalized, full_matrices=False)
    expected = normalized @ vt[:rank].T @ vt[:rank]
    scores = users @ items.T
    scale = (scores * expected).sum() / expected.pow(2).sum()
    torch.testing.assert_close(scores, scale * expected, rtol=1e-4, atol=1e-6)
    # and the item vectors are orthogonal with equal norms (V scaled), as the eigen-relation requires
    gram = items.T @ items
    torch.testing.assert_close(gram, gram[0, 0] * torch.eye(rank, dtype=torch.float64), rtol=1e-4, atol=1e-6)
    # and the egos have the normal init's mean squared row norm (init_std 0.1)
    egos = torch.cat([model.user_embedding.weight, model.item_embedding.weight])
    assert egos.pow(2).sum(1).mean().item() == pytest.approx(0.01 * rank, rel=1e-4)


def test_spectral_init_fills_missing_columns_with_noise() -> None:
    # R~ of the 3 x 4 graph has rank <= 3: the 8-dimensional embedding needs random columns beyond it
    users, items = spectral_ego(EDGE_USERS, EDGE_ITEMS, torch.ones(6), 3, 4, 8, num_layers=2)
    assert users.shape == (3, 8) and items.shape == (4, 8)
    assert torch.isfinite(users).all() and torch.isfinite(items).all()
    assert (items.abs().sum(0) > 0).all()


def test_spectral_init_trains_and_improves_the_fit() -> None:
    graph = build_graph(
        SPECTRAL_USERS.numpy(), SPECTRAL_ITEMS.numpy(), 5, 4, np.ones(SPECTRAL_USERS.numel(), np.float32)
    )
    torch.manual_seed(0)
    model = LightGCN(5, 4, SPECTRAL_USERS, SPECTRAL_ITEMS, embedding_dim=4, init="spectral").to(DEVICE)
    weights = torch.ones(SPECTRAL_USERS.numel(), device=DEVICE)
    before = model.loss(SPECTRAL_USERS.to(DEVICE), SPECTRAL_ITEMS.to(DEVICE), weights).item()
    train_model(model, graph, TrainSettings(epochs=20, learning_rate=0.05, batch_size=4))
    model.train()
    after = model.loss(SPECTRAL_USERS.to(DEVICE), SPECTRAL_ITEMS.to(DEVICE), weights).item()
    assert after < before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss_type": "softmax", "num_negatives": 0},
        {"loss_type": "softmax", "num_negatives": 3, "normalize": True},
        {"loss_type": "bpr", "num_negatives": 2, "normalize": False, "reg_weight": 1e-3},
    ],
)
def test_lightgcn_shapes_and_finite_loss(kwargs: dict[str, object]) -> None:
    model = _lightgcn(**kwargs)
    users, items = model.get_embedding()
    assert users.shape == (3, 8) and items.shape == (4, 8)
    loss = model.loss(EDGE_USERS.to(DEVICE), EDGE_ITEMS.to(DEVICE), torch.ones(6, device=DEVICE))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()  # type: ignore[no-untyped-call]
    assert model.user_embedding.weight.grad is not None
    scores = model(torch.tensor([0, 1], device=DEVICE), torch.tensor([2, 3], device=DEVICE))
    assert scores.shape == (2,)


def test_bpr_without_negatives_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_negatives"):
        LightGCN(3, 4, EDGE_USERS, EDGE_ITEMS, loss_type="bpr", num_negatives=0)


def test_recommend_excludes_masked_items() -> None:
    model = _lightgcn().eval()
    exclude = torch.zeros(3, 4, dtype=torch.bool, device=DEVICE)
    exclude[0, :3] = True
    _, top = model.recommend(torch.arange(3, device=DEVICE), k=2, exclude=exclude)
    assert top.shape == (3, 2)
    assert top[0, 0].item() == 3


def test_eval_cache_is_invalidated_by_training_mode() -> None:
    model = _lightgcn().eval()
    before = model.get_embedding()[0].clone()
    with torch.no_grad():
        model.user_embedding.weight.add_(1.0)
    model.train()
    model.eval()
    assert not torch.allclose(before, model.get_embedding()[0])


def test_export_tables_of_lightgcn() -> None:
    model = _lightgcn()
    tables = model.export_tables()
    users, items = model.eval().get_embedding()
    torch.testing.assert_close(tables.user_table, users)
    torch.testing.assert_close(tables.item_vectors, items)
    assert tables.foldin_scale > 0 and 0 <= tables.blend <= 1


def _two_tower() -> TwoTower:
    torch.manual_seed(0)
    return TwoTower(
        3,
        4,
        EDGE_USERS,
        EDGE_ITEMS,
        item_categories=torch.tensor([1, 1, 2, 0]),
        item_brands=torch.tensor([0, 1, 1, 2]),
        item_price_buckets=torch.tensor([1, 2, 3, 0]),
        edge_weights=torch.tensor([1.0, 2.0, 1.0, 4.0, 1.0, 1.0]),
        embedding_dim=8,
        normalize=True,
    ).to(DEVICE)


def test_two_tower_shapes_loss_and_tables() -> None:
    model = _two_tower()
    users, items = model.get_embedding()
    assert users.shape == (3, 8) and items.shape == (4, 8)
    torch.testing.assert_close(items.norm(dim=1), torch.ones(4, device=DEVICE))
    loss = model.loss(EDGE_USERS.to(DEVICE), EDGE_ITEMS.to(DEVICE), torch.ones(6, device=DEVICE))
    assert torch.isfinite(loss)
    loss.backward()  # type: ignore[no-untyped-call]
    tables = model.export_tables()
    assert tables.user_table.shape == (3, 8) and tables.foldin_table.shape == (4, 8)


def test_two_tower_pair_weights_are_the_edge_weights() -> None:
    model = _two_tower()
    weights = model._pair_weights(
        torch.tensor([0, 2, 1], device=DEVICE), torch.tensor([1, 1, 3], device=DEVICE)
    )
    assert weights.tolist() == [2.0, 4.0, 0.0]


def test_learning_rate_schedule() -> None:
    settings = TrainSettings(
        epochs=10, learning_rate=1.0, batch_size=4, warmup_fraction=0.1, min_lr_fraction=0.0
    )
    assert learning_rate_at(0.05, settings) == pytest.approx(0.5)
    assert learning_rate_at(0.1, settings) == pytest.approx(1.0)
    assert learning_rate_at(1.0, settings) == pytest.approx(0.0, abs=1e-9)
    constant = TrainSettings(epochs=1, learning_rate=0.3, batch_size=4, schedule="constant")
    assert learning_rate_at(0.7, constant) == 0.3


def test_training_beats_random_on_block_structure() -> None:
    # Given two disjoint communities of users and items
    rng = np.random.default_rng(0)
    users = rng.integers(0, 40, 600)
    items = (users % 2) * 20 + rng.integers(0, 20, 600)
    graph = build_graph(users, items, 40, 40)
    train, hold_u, hold_i = split_random_holdout(graph, 0.2, seed=0)
    from training_jobs.evaluation import Evaluator, popularity_metrics

    evaluator = Evaluator(train, hold_u, hold_i, DEVICE)
    model = LightGCN(40, 40, torch.as_tensor(train.users), torch.as_tensor(train.items), embedding_dim=16)
    result = train_model(
        model.to(DEVICE), train, TrainSettings(epochs=15, learning_rate=0.02, batch_size=128), evaluator
    )
    # Then the model ranks the user's own community far above what popularity does
    assert result.best_metrics["recall_10"] > popularity_metrics(evaluator, train)["recall_10"] + 0.1
    assert len(result.history) == 15
