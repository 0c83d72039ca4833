"""Synthetic, structured artifact sets for the serving benchmark and tests (never imported by the app).

Items lie around topic centres (each topic belongs to a category), users around one or two topics, and
each user's history holds items of their topics — so nearest neighbours are meaningful, an ANN index
behaves as on real embeddings, and "because you viewed" reasons are checkable. The user tower is built
with ``onnx.helper`` (Gather/MatMul/Add), which needs the ``onnx`` package of the dev and train extras
(not the serving layer): ``user_vector = U[u] + Σ w·I[items]`` with zero rows for unknown/padding.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from contract import layout
from contract.interactions import INTERACTION_TYPES
from contract.manifest import Manifest
from contract.popular import PopularDocument, PopularEntry

CATEGORIES = ("Electronics", "Audio", "Laptops", "Tablets", "Wearables", "Accessories", "Cameras", "Gaming")
_PRICE_RANGES = {
    "Electronics": (50, 1500),
    "Audio": (20, 600),
    "Laptops": (400, 3500),
    "Tablets": (150, 1800),
    "Wearables": (40, 900),
    "Accessories": (5, 150),
    "Cameras": (100, 4000),
    "Gaming": (20, 800),
}
HISTORY_LENGTH = 12
# A funnel: most interactions are views, few are purchases (codes of INTERACTION_TYPES).
_TYPE_PROBABILITIES = (0.6, 0.2, 0.1, 0.1)


@dataclass
class SyntheticWorld:
    """Item and user vectors with metadata and training histories, in index order."""

    item_vectors: npt.NDArray[np.float32]
    user_vectors: npt.NDArray[np.float32]
    item_ids: npt.NDArray[np.str_]
    titles: npt.NDArray[np.str_]
    categories: npt.NDArray[np.str_]
    brands: npt.NDArray[np.str_]
    prices: npt.NDArray[np.float64]
    user_ids: npt.NDArray[np.str_]
    history_indptr: npt.NDArray[np.int64]
    history_items: npt.NDArray[np.int32]
    history_types: npt.NDArray[np.int8]
    popularity: npt.NDArray[np.float64]
    trained_until: datetime = field(default_factory=lambda: datetime(2025, 1, 7, tzinfo=UTC))

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.item_vectors.shape[1])

    def history(self, user: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8]]:
        """A user's training items and type codes, most recent first."""
        start, stop = int(self.history_indptr[user]), int(self.history_indptr[user + 1])
        return self.history_items[start:stop], self.history_types[start:stop]


def make_world(
    n_items: int,
    n_users: int,
    *,
    dim: int = 64,
    topics: int | None = None,
    seed: int = 7,
    with_histories: bool = True,
) -> SyntheticWorld:
    """A seeded catalogue of ``n_items`` items and ``n_users`` users (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_topics = topics or max(len(CATEGORIES), min(1024, n_items // 200))
    centres = rng.standard_normal((n_topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    item_topic = rng.integers(0, n_topics, n_items)
    items = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, 200_000):  # chunked: bounded temporaries at 1M items
        stop = min(n_items, start + 200_000)
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32) * (0.6 / np.sqrt(dim))
        items[start:stop] = centres[item_topic[start:stop]] + noise
    category_of_topic = np.array(CATEGORIES)[np.arange(n_topics) % len(CATEGORIES)]
    categories = category_of_topic[item_topic]
    low = np.array([_PRICE_RANGES[c][0] for c in CATEGORIES], dtype=np.float64)
    high = np.array([_PRICE_RANGES[c][1] for c in CATEGORIES], dtype=np.float64)
    category_code = np.arange(n_topics)[item_topic] % len(CATEGORIES)
    prices = np.round(
        low[category_code] + rng.random(n_items) * (high[category_code] - low[category_code]), 2
    )
    item_ids = _numbered("item_", n_items)
    titles = np.char.add(np.char.add(categories.astype(str), " product "), np.char.lstrip(item_ids, "item_"))
    brands = np.array(["Acme", "Globex", "Initech", "Umbrella", "Soylent"])[rng.integers(0, 5, n_items)]

    user_topic = rng.integers(0, n_topics, n_users)
    users = centres[user_topic] + rng.standard_normal((n_users, dim)).astype(np.float32) * (
        0.4 / np.sqrt(dim)
    )
    user_ids = _numbered("user_", n_users)

    indptr = np.zeros(n_users + 1, dtype=np.int64)
    history_items = np.empty(0, np.int32)
    history_types = np.empty(0, np.int8)
    popularity = rng.random(n_items) * 0.5
    if with_histories and n_users:
        by_topic = _items_by_topic(item_topic, n_topics)
        chunks_items: list[npt.NDArray[np.int32]] = []
        chunks_types: list[npt.NDArray[np.int8]] = []
        for user in range(n_users):
            pool = by_topic[user_topic[user]]
            if pool.size == 0:
                pool = np.arange(n_items)
            chosen = rng.choice(pool, size=min(HISTORY_LENGTH, pool.size), replace=False).astype(np.int32)
            kinds = rng.choice(len(INTERACTION_TYPES), size=chosen.size, p=_TYPE_PROBABILITIES).astype(
                np.int8
            )
            chunks_items.append(chosen)
            chunks_types.append(kinds)
            indptr[user + 1] = indptr[user] + chosen.size
        history_items = np.concatenate(chunks_items)
        history_types = np.concatenate(chunks_types)
        np.add.at(popularity, history_items, 1.0 + history_types.astype(np.float64))
    return SyntheticWorld(
        item_vectors=items,
        user_vectors=users.astype(np.float32),
        item_ids=item_ids.astype(np.str_),
        titles=titles.astype(np.str_),
        categories=categories.astype(np.str_),
        brands=brands.astype(np.str_),
        prices=prices,
        user_ids=user_ids.astype(np.str_),
        history_indptr=indptr,
        history_items=history_items,
        history_types=history_types,
        popularity=popularity,
    )


def _numbered(prefix: str, n: int) -> npt.NDArray[np.str_]:
    width = max(4, len(str(n)))
    return np.array([f"{prefix}{number:0{width}d}" for number in range(1, n + 1)], dtype=np.str_)


def _items_by_topic(item_topic: npt.NDArray[np.int64], n_topics: int) -> list[npt.NDArray[np.int64]]:
    order = np.argsort(item_topic, kind="stable")
    bounds = np.searchsorted(item_topic[order], np.arange(n_topics + 1))
    return [order[bounds[t] : bounds[t + 1]] for t in range(n_topics)]


def user_tower_onnx(user_table: npt.NDArray[np.float32], item_table: npt.NDArray[np.float32]) -> bytes:
    """``user_vector = U[u] + Σ_l w_l · I[items_l]`` as ONNX (unknown user / padding → zero rows)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dim = int(item_table.shape[1])
    zero = np.zeros((1, dim), dtype=np.float32)
    initializers = [
        numpy_helper.from_array(np.vstack([zero, user_table]).astype(np.float32), "users_padded"),
        numpy_helper.from_array(np.vstack([zero, item_table]).astype(np.float32), "items_padded"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    node = helper.make_node
    nodes = [
        node("Add", ["user_index", "one"], ["user_row"]),
        node("Gather", ["users_padded", "user_row"], ["user_vec"], axis=0),
        node("Add", ["item_indices", "one"], ["item_rows"]),
        node("Gather", ["items_padded", "item_rows"], ["item_vecs"], axis=0),
        node("Unsqueeze", ["item_weights", "axis1"], ["weights_row"]),
        node("MatMul", ["weights_row", "item_vecs"], ["folded_3d"]),
        node("Squeeze", ["folded_3d", "axis1"], ["folded"]),
        node("Add", ["user_vec", "folded"], ["user_vector"]),
    ]
    graph = helper.make_graph(
        nodes,
        "synthetic_user_tower",
        inputs=[
            helper.make_tensor_value_info("user_index", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("item_indices", TensorProto.INT64, ["batch", "recent"]),
            helper.make_tensor_value_info("item_weights", TensorProto.FLOAT, ["batch", "recent"]),
        ],
        outputs=[helper.make_tensor_value_info("user_vector", TensorProto.FLOAT, ["batch", dim])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="embedrec-synthetic"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def build_index(vectors: npt.NDArray[np.float32], kind: str, **params: int) -> tuple[Any, dict[str, Any]]:
    """A FAISS inner-product index (``flat_ip``, ``ivf`` or ``hnsw``) and its manifest ``index`` object."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = data.shape
    index: Any
    if kind == "flat_ip":
        index = faiss.IndexFlatIP(dim)
        used: dict[str, int] = {}
    elif kind == "hnsw":
        m = params.get("M", 32)
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.get("efConstruction", 80)
        index.hnsw.efSearch = params.get("efSearch", 64)
        used = {"M": m, "efConstruction": index.hnsw.efConstruction, "efSearch": index.hnsw.efSearch}
    elif kind == "ivf":
        nlist = params.get("nlist", max(1, int(4 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = data[np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = min(params.get("nprobe", 32), nlist)
        used = {"nlist": nlist, "nprobe": int(index.nprobe)}
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(data)
    return index, {"type": kind, "params": used, "threshold": params.get("threshold", 100_000)}


def popular_json(world: SyntheticWorld, top_n: int = 200) -> dict[str, Any]:
    """``popular.json`` per docs/artifacts.md (full entries, best first)."""

    def entries(indices: npt.NDArray[np.int64]) -> list[PopularEntry]:
        ranked = indices[np.argsort(-world.popularity[indices], kind="stable")][:top_n]
        return [
            PopularEntry(
                item_id=str(world.item_ids[i]),
                score=round(float(world.popularity[i]), 6),
                title=str(world.titles[i]),
                category=str(world.categories[i]),
                brand=str(world.brands[i]),
                price=float(world.prices[i]),
            )
            for i in ranked
        ]

    by_category = {
        str(name): entries(np.flatnonzero(world.categories == name)) for name in np.unique(world.categories)
    }
    return PopularDocument(
        overall=entries(np.arange(world.item_ids.size)), by_category=by_category
    ).document()


def lookup_npz(world: SyntheticWorld, *, compress: bool = True) -> bytes:
    """``lookup.npz`` per docs/artifacts.md."""
    buffer = io.BytesIO()
    save = np.savez_compressed if compress else np.savez
    save(
        buffer,
        item_ids=world.item_ids,
        titles=world.titles,
        categories=world.categories,
        brands=world.brands,
        prices=world.prices,
        user_ids=world.user_ids,
        history_indptr=world.history_indptr,
        history_items=world.history_items,
        history_types=world.history_types,
        item_order=np.argsort(world.item_ids, kind="stable"),
        user_order=np.argsort(world.user_ids, kind="stable"),
    )
    return buffer.getvalue()


def manifest(
    *,
    tenant_id: str,
    version: str,
    world: SyntheticWorld,
    files: dict[str, bytes],
    index: dict[str, Any],
    model_type: str = "lightgcn",
) -> dict[str, Any]:
    """``manifest.json`` with the sha256 and size of every file."""
    end = world.trained_until
    document = Manifest(
        schema_version=1,
        tenant_id=tenant_id,
        version=version,
        model_type=model_type,
        created_at=(end + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        data_window={
            "start": (end - timedelta(days=90)).isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
        },
        counts={"users": int(world.user_ids.size), "items": int(world.item_ids.size)},
        metrics={"ndcg_10": 0.3, "recall_10": 0.4, "precision_10": 0.1},
        embedding_dim=world.dim,
        n_items=int(world.item_ids.size),
        n_users=int(world.user_ids.size),
        index=index,
        onnx={"inputs": ["user_index", "item_indices", "item_weights"], "output": "user_vector"},
    )
    return document.with_files(files).document()


def artifact_set(
    world: SyntheticWorld,
    *,
    tenant_id: str,
    version: str,
    index_kind: str = "flat_ip",
    index_params: dict[str, int] | None = None,
    tower: bytes | None = None,
    compress: bool = True,
    external_tower: bool = False,
) -> dict[str, bytes]:
    """Every file of a version, ``manifest.json`` included (written last by a publisher).

    ``external_tower``: the tower's tables in ``user_tower.onnx.data``, as training publishes them;
    without it, one self-contained ``user_tower.onnx``, as versions exported before that were.
    """
    index, index_doc = build_index(world.item_vectors, index_kind, **(index_params or {}))
    model = tower if tower is not None else user_tower_onnx(world.user_vectors, world.item_vectors)
    towers = {layout.USER_TOWER: model}
    if external_tower:
        from training_jobs.tower_files import split_external_data  # onnx: only when asked for

        towers = split_external_data(model)
    files = {
        **towers,
        layout.ITEM_INDEX: bytes(faiss.serialize_index(index).tobytes()),
        layout.LOOKUP: lookup_npz(world, compress=compress),
        layout.POPULAR: json.dumps(popular_json(world)).encode(),
    }
    document = manifest(tenant_id=tenant_id, version=version, world=world, files=files, index=index_doc)
    return {**files, layout.MANIFEST: json.dumps(document, indent=2).encode()}
