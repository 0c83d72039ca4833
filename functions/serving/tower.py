"""The exported user tower (``user_tower.onnx``) behind onnxruntime.

Contract (docs/artifacts.md): inputs ``user_index`` int64 [B] (-1 = unknown user), ``item_indices``
int64 [B, L] (-1 = padding), ``item_weights`` float32 [B, L]; output ``user_vector`` float32 [B, D].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from functions.serving.errors import ArtifactUnreadableError

USER_INDEX = "user_index"
ITEM_INDICES = "item_indices"
ITEM_WEIGHTS = "item_weights"
USER_VECTOR = "user_vector"
_INPUTS = frozenset({USER_INDEX, ITEM_INDICES, ITEM_WEIGHTS})


class UserTower:
    """Maps a user (known index and/or recent items with weights) to a vector in the item space."""

    def __init__(self, model: str | bytes, *, dim: int, threads: int = 1) -> None:
        """``model``: the file's path (its external data, if any, is mapped from beside it) or its bytes."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime's own errors (InvalidProtobuf, Fail, ...) derive from Exception only; the loader
        # turns any failure to build a bundle from hash-checked bytes into ArtifactUnreadableError.
        self._session: Any = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        inputs = {node.name for node in self._session.get_inputs()}
        outputs = {node.name for node in self._session.get_outputs()}
        if not _INPUTS <= inputs or USER_VECTOR not in outputs:
            raise ArtifactUnreadableError(
                f"user_tower.onnx has inputs {sorted(inputs)} and outputs {sorted(outputs)}; the contract "
                f"needs inputs {sorted(_INPUTS)} and output '{USER_VECTOR}'"
            )
        self.dim = dim
        probe = self.user_vector(-1, np.full(1, -1, np.int64), np.zeros(1, np.float32))
        if probe.shape != (dim,):
            raise ArtifactUnreadableError(f"user_tower.onnx returns {probe.shape}, expected ({dim},)")

    def user_vector(
        self, user_index: int, item_indices: npt.NDArray[np.int64], item_weights: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """One user's vector; ``item_indices``/``item_weights`` of equal length (pad with -1 / 0)."""
        if item_indices.size == 0:
            item_indices = np.full(1, -1, np.int64)
            item_weights = np.zeros(1, np.float32)
        feeds = {
            USER_INDEX: np.array([user_index], dtype=np.int64),
            ITEM_INDICES: item_indices.astype(np.int64, copy=False).reshape(1, -1),
            ITEM_WEIGHTS: item_weights.astype(np.float32, copy=False).reshape(1, -1),
        }
        (vector,) = self._session.run([USER_VECTOR], feeds)
        return np.asarray(vector, dtype=np.float32).reshape(-1)
