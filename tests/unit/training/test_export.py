"""ONNX user tower equals torch; FAISS top-k equals the model's top-k; lookup tables load without pickle."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from contract.layout import USER_TOWER, USER_TOWER_DATA
from training_jobs.export import (
    ONNX_INPUTS,
    ONNX_OUTPUT,
    build_faiss_index,
    build_user_tower_onnx,
    lookup_npz,
    serialize_faiss_index,
    user_tower_files,
    user_vectors_reference,
)
from training_jobs.models.base import UserTowerTables
from training_jobs.models.lightgcn import LightGCN
from training_jobs.tower_files import join_external_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def tables() -> UserTowerTables:
    torch.manual_seed(0)
    users = torch.randint(0, 30, (300,))
    items = torch.randint(0, 50, (300,))
    model = LightGCN(30, 50, users, items, embedding_dim=16, foldin_blend=0.3)
    return model.export_tables()


def _session(tables: UserTowerTables) -> ort.InferenceSession:
    return ort.InferenceSession(build_user_tower_onnx(tables), providers=["CPUExecutionProvider"])


def _run(
    session: ort.InferenceSession, user: np.ndarray, items: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    feeds = {"user_index": user, "item_indices": items, "item_weights": weights}
    return np.asarray(session.run([ONNX_OUTPUT], feeds)[0])


def test_onnx_uses_only_gather_matmul_style_ops(tables: UserTowerTables) -> None:
    model = onnx.load_from_string(build_user_tower_onnx(tables))
    ops = {node.op_type for node in model.graph.node}
    assert {"Gather", "MatMul"} <= ops
    assert not ops & {"Loop", "Scan", "If", "EmbeddingBag"}
    assert [i.name for i in model.graph.input] == list(ONNX_INPUTS)
    assert [o.name for o in model.graph.output] == [ONNX_OUTPUT]


def test_onnx_matches_torch_reference(tables: UserTowerTables) -> None:
    # Given known, unknown and out-of-range users with padded, weighted recent items
    rng = np.random.default_rng(0)
    batch, length = 64, 7
    user = rng.integers(-1, 32, batch).astype(np.int64)
    items = rng.integers(-1, 52, (batch, length)).astype(np.int64)
    items[:5] = -1  # no recent items
    weights = rng.uniform(-0.5, 3.0, (batch, length)).astype(np.float32)
    # When both implementations run
    got = _run(_session(tables), user, items, weights)
    expected = user_vectors_reference(
        tables, torch.from_numpy(user), torch.from_numpy(items), torch.from_numpy(weights)
    ).numpy()
    # Then they agree
    assert got.shape == (batch, tables.user_table.shape[1])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_known_user_without_recent_items_gets_exactly_its_vector(tables: UserTowerTables) -> None:
    user = np.arange(30, dtype=np.int64)
    items = np.full((30, 4), -1, dtype=np.int64)
    weights = np.ones((30, 4), dtype=np.float32)
    got = _run(_session(tables), user, items, weights)
    np.testing.assert_array_equal(got, tables.user_table.numpy())


def test_unknown_user_gets_fold_in_and_known_user_blends(tables: UserTowerTables) -> None:
    session = _session(tables)
    items = np.array([[3, 7, -1]], dtype=np.int64)
    weights = np.array([[1.0, 3.0, 5.0]], dtype=np.float32)
    foldin = (tables.foldin_table[3] + 3 * tables.foldin_table[7]).numpy() / 4 * tables.foldin_scale
    unknown = _run(session, np.array([-1], dtype=np.int64), items, weights)[0]
    np.testing.assert_allclose(unknown, foldin, rtol=1e-5, atol=1e-6)
    known = _run(session, np.array([2], dtype=np.int64), items, weights)[0]
    blended = 0.7 * tables.user_table[2].numpy() + 0.3 * foldin
    np.testing.assert_allclose(known, blended, rtol=1e-5, atol=1e-6)
    nobody = _run(
        session, np.array([-1], dtype=np.int64), np.full((1, 2), -1, np.int64), np.ones((1, 2), np.float32)
    )
    np.testing.assert_array_equal(nobody, np.zeros_like(nobody))


def test_flat_index_top_k_equals_model_top_k(tables: UserTowerTables) -> None:
    items = tables.item_vectors.numpy()
    index, spec = build_faiss_index(items, exact_max_items=1000)
    assert spec.type == "flat_ip" and index.ntotal == 50
    restored = faiss.deserialize_index(np.frombuffer(serialize_faiss_index(index), dtype=np.uint8))
    users = tables.user_table.numpy()
    _, faiss_top = restored.search(np.ascontiguousarray(users), 10)
    model_top = torch.topk(tables.user_table @ tables.item_vectors.T, 10).indices.numpy()
    np.testing.assert_array_equal(faiss_top, model_top)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_large_catalogue_uses_approximate_index_with_high_recall(kind: str) -> None:
    rng = np.random.default_rng(0)
    items = rng.standard_normal((3000, 16)).astype(np.float32)
    index, spec = build_faiss_index(items, exact_max_items=1000, large_type=kind, ivf_nprobe=64)
    assert spec.type == kind and spec.threshold == 1000
    assert spec.to_manifest()["params"]
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    _, approx = index.search(queries, 10)
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.9


def test_lookup_npz_loads_without_pickle() -> None:
    data = lookup_npz({"item_ids": np.array(["a", "bb"]), "prices": np.array([1.5, np.nan])})
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        assert loaded["item_ids"].tolist() == ["a", "bb"]
        assert loaded["prices"][0] == 1.5


def test_the_published_tower_keeps_its_tables_beside_it_and_answers_the_same(
    tables: UserTowerTables, tmp_path: Path
) -> None:
    # Given the tower as training publishes it: the graph, and its tables as ONNX external data
    files = user_tower_files(tables)
    graph, data = files[USER_TOWER], files[USER_TOWER_DATA]
    table_bytes = (tables.user_table.numel() + tables.foldin_table.numel()) * 4
    assert len(data) >= table_bytes and len(graph) < 10_000
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    rng = np.random.default_rng(1)
    user = rng.integers(-1, 32, 16).astype(np.int64)
    items = rng.integers(-1, 52, (16, 4)).astype(np.int64)
    weights = rng.uniform(0.0, 2.0, (16, 4)).astype(np.float32)

    # When onnxruntime reads it from disk, and the gate joins it back into one model in memory
    from_disk = ort.InferenceSession(str(tmp_path / USER_TOWER), providers=["CPUExecutionProvider"])
    joined = ort.InferenceSession(join_external_data(graph, data), providers=["CPUExecutionProvider"])

    # Then both answer exactly as the self-contained tower does
    expected = _run(_session(tables), user, items, weights)
    np.testing.assert_array_equal(_run(from_disk, user, items, weights), expected)
    np.testing.assert_array_equal(_run(joined, user, items, weights), expected)
