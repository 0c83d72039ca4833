"""The published user tower as two files: the ONNX graph and its tables as ONNX external data.

``user_tower.onnx`` names ``user_tower.onnx.data`` (``contract.layout.USER_TOWER_DATA``) for every
initializer of ``EXTERNAL_DATA_MIN_BYTES`` or more — the user and fold-in tables — so that serving's
onnxruntime maps that file from local disk instead of holding the tables in memory. Only ``onnx`` is
needed here (no torch), so local tooling can split a synthetic tower the same way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from onnx import TensorProto, external_data_helper

from contract.layout import USER_TOWER, USER_TOWER_DATA

#: Initializers of at least this many bytes go to ``USER_TOWER_DATA``.
EXTERNAL_DATA_MIN_BYTES = 1024


def split_external_data(model: bytes) -> dict[str, bytes]:
    """A self-contained ONNX model as ``{USER_TOWER: graph, USER_TOWER_DATA: large initializers}``
    (the graph alone when no initializer is that large)."""
    proto = onnx.load_from_string(model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / USER_TOWER
        onnx.save_model(
            proto,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=USER_TOWER_DATA,
            size_threshold=EXTERNAL_DATA_MIN_BYTES,
        )
        data = Path(folder) / USER_TOWER_DATA
        if not data.exists():  # nothing that large: the graph holds everything
            return {USER_TOWER: path.read_bytes()}
        return {USER_TOWER: path.read_bytes(), USER_TOWER_DATA: data.read_bytes()}


def join_external_data(model: bytes, data: bytes) -> bytes:
    """The inverse of :func:`split_external_data`: one self-contained model (readable from memory)."""
    proto = onnx.load_from_string(model)
    for tensor in proto.graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = external_data_helper.ExternalDataInfo(tensor)
        start = int(info.offset or 0)
        stop = start + int(info.length) if info.length else len(data)
        tensor.raw_data = data[start:stop]
        tensor.data_location = TensorProto.DEFAULT
        del tensor.external_data[:]
    return bytes(proto.SerializeToString())
