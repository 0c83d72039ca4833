"""Serving artifacts from a trained model: the ONNX user tower, the FAISS item index, lookup tables.

The user tower is written with ``onnx.helper`` from Gather/MatMul/elementwise ops only (no EmbeddingBag,
Loop or Scan), so onnxruntime runs it in microseconds and it needs no torch at serving time.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from training_jobs.models.base import UserTowerTables
from training_jobs.tower_files import split_external_data

ONNX_INPUTS = ("user_index", "item_indices", "item_weights")
ONNX_OUTPUT = "user_vector"
ONNX_OPSET = 17


def user_vectors_reference(
    tables: UserTowerTables,
    user_index: torch.Tensor,
    item_indices: torch.Tensor,
    item_weights: torch.Tensor,
) -> torch.Tensor:
    """The user tower's formula in torch (the ONNX graph computes exactly this).

    ``user_index`` -1 (or out of range) = unknown user; ``item_indices`` -1 = padding; negative weights
    count as 0. A user with neither a known index nor items gets the zero vector (serving falls back
    to popular items).
    """
    n_users, n_items = tables.user_table.shape[0], tables.foldin_table.shape[0]
    known_b = (user_index >= 0) & (user_index < n_users)
    known = known_b.float().unsqueeze(1)
    user_vec = tables.user_table[torch.where(known_b, user_index, 0)]
    valid_b = (item_indices >= 0) & (item_indices < n_items)
    weights = torch.relu(item_weights) * valid_b.float()
    gathered = tables.foldin_table[torch.where(valid_b, item_indices, 0)]
    summed = torch.bmm(weights.unsqueeze(1), gathered).squeeze(1)
    total = weights.sum(dim=1, keepdim=True)
    has = (total > 0).float()
    foldin = summed / total.clamp_min(1e-12) * tables.foldin_scale
    coef_user = known * (1.0 - has * tables.blend)
    coef_foldin = has * (known * tables.blend + (1.0 - known))
    return coef_user * user_vec + coef_foldin * foldin


def build_user_tower_onnx(tables: UserTowerTables) -> bytes:
    """Serialize the user tower (see :func:`user_vectors_reference`) as an ONNX model."""
    user_table = tables.user_table.detach().cpu().float().numpy()
    foldin_table = tables.foldin_table.detach().cpu().float().numpy()
    n_users, dim = user_table.shape
    n_items = foldin_table.shape[0]

    def const(name: str, value: Any, dtype: Any) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    initializers = [
        numpy_helper.from_array(user_table, "user_table"),
        numpy_helper.from_array(foldin_table, "foldin_table"),
        const("zero_i", 0, np.int64),
        const("n_users_i", n_users, np.int64),
        const("n_items_i", n_items, np.int64),
        const("zero_f", 0.0, np.float32),
        const("one_f", 1.0, np.float32),
        const("eps_f", 1e-12, np.float32),
        const("scale_f", tables.foldin_scale, np.float32),
        const("blend_f", tables.blend, np.float32),
        const("axis1", [1], np.int64),
    ]
    node = helper.make_node
    nodes = [
        # known user: 0 <= user_index < n_users
        node("GreaterOrEqual", ["user_index", "zero_i"], ["u_ge0"]),
        node("Less", ["user_index", "n_users_i"], ["u_ltn"]),
        node("And", ["u_ge0", "u_ltn"], ["known_b"]),
        node("Where", ["known_b", "user_index", "zero_i"], ["safe_user"]),
        node("Gather", ["user_table", "safe_user"], ["user_vec"], axis=0),
        node("Cast", ["known_b"], ["known_1d"], to=TensorProto.FLOAT),
        node("Unsqueeze", ["known_1d", "axis1"], ["known"]),
        # recent items: valid where 0 <= index < n_items; weights clipped at 0
        node("GreaterOrEqual", ["item_indices", "zero_i"], ["i_ge0"]),
        node("Less", ["item_indices", "n_items_i"], ["i_ltn"]),
        node("And", ["i_ge0", "i_ltn"], ["valid_b"]),
        node("Where", ["valid_b", "item_indices", "zero_i"], ["safe_items"]),
        node("Cast", ["valid_b"], ["valid_f"], to=TensorProto.FLOAT),
        node("Relu", ["item_weights"], ["w_pos"]),
        node("Mul", ["w_pos", "valid_f"], ["w"]),
        node("Gather", ["foldin_table", "safe_items"], ["item_vecs"], axis=0),
        node("Unsqueeze", ["w", "axis1"], ["w_row"]),
        node("MatMul", ["w_row", "item_vecs"], ["summed_3d"]),
        node("Squeeze", ["summed_3d", "axis1"], ["summed"]),
        node("ReduceSum", ["w", "axis1"], ["total"], keepdims=1),
        node("Greater", ["total", "zero_f"], ["has_b"]),
        node("Cast", ["has_b"], ["has"], to=TensorProto.FLOAT),
        node("Max", ["total", "eps_f"], ["denominator"]),
        node("Div", ["summed", "denominator"], ["mean"]),
        node("Mul", ["mean", "scale_f"], ["foldin"]),
        # coefficients: known*(1 - has*blend) and has*(known*blend + 1 - known)
        node("Mul", ["has", "blend_f"], ["has_blend"]),
        node("Sub", ["one_f", "has_blend"], ["keep_user"]),
        node("Mul", ["known", "keep_user"], ["coef_user"]),
        node("Mul", ["known", "blend_f"], ["known_blend"]),
        node("Sub", ["one_f", "known"], ["unknown"]),
        node("Add", ["known_blend", "unknown"], ["foldin_share"]),
        node("Mul", ["has", "foldin_share"], ["coef_foldin"]),
        node("Mul", ["coef_user", "user_vec"], ["user_part"]),
        node("Mul", ["coef_foldin", "foldin"], ["foldin_part"]),
        node("Add", ["user_part", "foldin_part"], [ONNX_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "user_tower",
        inputs=[
            helper.make_tensor_value_info("user_index", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("item_indices", TensorProto.INT64, ["batch", "recent"]),
            helper.make_tensor_value_info("item_weights", TensorProto.FLOAT, ["batch", "recent"]),
        ],
        outputs=[helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", dim])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="embedrec-training"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def user_tower_files(tables: UserTowerTables) -> dict[str, bytes]:
    """The published user tower: ``user_tower.onnx`` with its tables as ONNX external data in
    ``user_tower.onnx.data`` (serving maps that file instead of holding the tables in memory)."""
    return split_external_data(build_user_tower_onnx(tables))


@dataclass(frozen=True)
class IndexSpec:
    """How the item index was built (recorded in the manifest): ``flat_ip`` (exact), ``hnsw`` or ``ivf``."""

    type: str
    params: dict[str, int]
    threshold: int

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``index`` object."""
        return {"type": self.type, "params": dict(self.params), "threshold": self.threshold, "metric": "ip"}


def build_faiss_index(
    vectors: npt.NDArray[np.float32],
    exact_max_items: int,
    large_type: str = "hnsw",
    hnsw_m: int = 32,
    hnsw_ef_construction: int = 200,
    hnsw_ef_search: int = 128,
    ivf_nprobe: int = 32,
) -> tuple[Any, IndexSpec]:
    """Inner-product index over item vectors, ids = row numbers 0..N-1.

    ``IndexFlatIP`` (exact) up to ``exact_max_items`` items; above it HNSW or IVF-Flat (approximate).
    """
    import faiss

    data = np.ascontiguousarray(vectors, dtype=np.float32)
    n_items, dim = data.shape
    index: Any
    if n_items <= exact_max_items:
        index = faiss.IndexFlatIP(dim)
        spec = IndexSpec("flat_ip", {}, exact_max_items)
    elif large_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = hnsw_ef_construction
        index.hnsw.efSearch = hnsw_ef_search
        spec = IndexSpec(
            "hnsw",
            {"M": hnsw_m, "efConstruction": hnsw_ef_construction, "efSearch": hnsw_ef_search},
            exact_max_items,
        )
    else:
        nlist = max(1, int(4 * np.sqrt(n_items)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(data)
        index.nprobe = min(ivf_nprobe, nlist)
        spec = IndexSpec("ivf", {"nlist": nlist, "nprobe": int(index.nprobe)}, exact_max_items)
    index.add(data)
    return index, spec


def serialize_faiss_index(index: Any) -> bytes:
    """The index as bytes (``faiss.deserialize_index`` reads it back)."""
    import faiss

    return bytes(faiss.serialize_index(index).tobytes())


def lookup_npz(arrays: dict[str, npt.NDArray[Any]]) -> bytes:
    """Compressed ``.npz`` of plain (non-object) arrays, loadable with ``allow_pickle=False``."""
    buffer = io.BytesIO()
    save: Any = np.savez_compressed
    save(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    return buffer.getvalue()


def json_bytes(document: Any) -> bytes:
    """Deterministic, human-readable JSON."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False).encode()
