"""Which model candidates a training job tries: the specs for a config, a tenant's size and the hardware.

``model_type`` ``auto`` plans EASE (up to :data:`EASE_MAX_ITEMS` items, and only where its dense matrices
fit in memory), the graph filter (where its basis fits in memory), ALS (always) and LightGCN (on a GPU, or
on CPU up to :data:`LIGHTGCN_CPU_MAX_EDGES` pairs); ``als``/``ease``/``graph_filter`` plan a small grid of
that model (a value set in the config pins that hyper-parameter); ``lightgcn``/``two_tower`` plan the one
configured model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from contract.model_types import TrainedModelType
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph
from training_jobs.errors import TrainingJobError
from training_jobs.models.ease import MAX_ITEMS as EASE_MAX_ITEMS

CandidateType = TrainedModelType
ParamValue = float | int | bool | str
LIGHTGCN_CPU_MAX_EDGES = 200_000
"""On CPU, ``auto`` adds LightGCN only up to this many training pairs: where it wins (the sample, 54k pairs:
published at NDCG@10 0.0798 against the graph filter's 0.0608). Larger tenants train it on CPU in minutes
(at most 32 full-graph steps per epoch from a spectral start, ``candidate_fit.gradient_batch_size``; Gowalla,
810k pairs: 29 s of one core per epoch, Recall@20 0.125 / NDCG@20 0.109 on test after 3 epochs) but there it
trails the graph filter (0.187 / 0.155) and ALS (0.165 / 0.137), so its epochs would only lengthen selection:
``model_type: lightgcn`` asks for it, and on a GPU ``auto`` always plans it."""


def params_text(params: Mapping[str, ParamValue]) -> str:
    """``alpha=10,factors=128`` - hyper-parameters sorted by name, for logs and tables."""
    return ",".join(f"{key}={value}" for key, value in sorted(params.items()))


@dataclass(frozen=True)
class CandidateSpec:
    """One model with its hyper-parameters (for gradient-trained models ``epochs`` is one of them)."""

    model_type: CandidateType
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``als(factors=128,alpha=10)`` - stable, for logs, metrics and the manifest."""
        return f"{self.model_type}({params_text(self.params)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"model_type": self.model_type, "params": dict(self.params)}


def ease_fits_in_memory(n_items: int, available_bytes: int | None = None) -> bool:
    """EASE holds ~4 dense float64 ``n_items^2`` matrices at its peak; require that to fit in half the RAM."""
    if n_items > EASE_MAX_ITEMS:
        return False
    available = available_bytes if available_bytes is not None else _available_memory()
    return 4 * 8 * n_items * n_items <= available // 2


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _grid(pinned: float | int | None, values: Sequence[float | int]) -> list[float | int]:
    return [pinned] if pinned is not None else list(values)


ALS_PAIRS: tuple[tuple[float, float], ...] = ((0.1, 10.0), (1.0, 10.0), (5.0, 2.0), (5.0, 10.0))
"""The (regularisation, alpha) pairs of the ALS grid."""


def als_grid(
    config: TrainingConfig,
    graph: InteractionGraph,
    pairs: Sequence[tuple[float, float]] = ALS_PAIRS,
) -> list[CandidateSpec]:
    """A small ALS grid: factors by size, four (regularisation, alpha) pairs; config values pin them."""
    factors_default = 64 if graph.n_edges < 200_000 else 256
    if config.als_regularization is not None or config.als_alpha is not None:
        pairs = [
            (reg, alpha)
            for reg in _grid(config.als_regularization, sorted({reg for reg, _ in pairs}))
            for alpha in _grid(config.als_alpha, sorted({alpha for _, alpha in pairs}))
        ]
    specs = []
    for factors in _grid(config.als_factors, [factors_default]):
        for regularization, alpha in pairs:
            params: dict[str, ParamValue] = {
                "factors": int(factors),
                "regularization": float(regularization),
                "alpha": float(alpha),
                "iterations": config.als_iterations,
            }
            specs.append(CandidateSpec("als", params))
    return specs


EASE_L2_FACTORS = (8.0, 32.0, 128.0, 512.0)
"""EASE's L2 grid as multiples of the mean item weight mass (so it fits any data scale)."""


def ease_grid(config: TrainingConfig, graph: InteractionGraph) -> list[CandidateSpec]:
    """EASE on the weighted ``X`` and, where the pair weights differ, on the binary ``X`` too.

    Each spec's L2 is pinned by the config or swept by the fit on one Gram matrix. Whether interaction-type
    weights help EASE depends on the shop (on the generated sample the binary ``X`` ranks better on
    validation), so validation chooses: with a swept L2 in one screened spec (both variants at one grid
    point, the rest of the grid on the better one), with a pinned L2 as two specs.
    """
    rank = min(config.ease_rank, graph.n_items)
    l2: dict[str, ParamValue] = (
        {"l2": config.ease_l2}
        if config.ease_l2 is not None
        else {"l2_factors": "/".join(f"{factor:g}" for factor in EASE_L2_FACTORS)}
    )
    varied = graph.n_edges > 0 and float(np.ptp(graph.weights)) > 0
    if varied and config.ease_l2 is None:  # one unit: the variants compared at one grid point first
        return [CandidateSpec("ease", {**l2, "rank": rank, "binary": "screened"})]
    return [
        CandidateSpec("ease", {**l2, "rank": rank, "binary": binary})
        for binary in ((False, True) if varied else (False,))
    ]


GRAPH_FILTER_MAX_RANK = 1024
"""Largest rank the graph filter is planned with (on Gowalla 1024 ranks best on validation of 256-1024)."""
GRAPH_FILTER_FLOP_BUDGET = 2e12
"""Dense work the planned basis may take (~10 passes over ``(n_users + n_items) x rank^2``): big tenants get
a lower rank instead of hours of CPU."""


def graph_filter_rank(n_users: int, n_items: int) -> int:
    """The planned rank: up to :data:`GRAPH_FILTER_MAX_RANK`, half the smaller side, within the budget."""
    by_budget = int(math.sqrt(GRAPH_FILTER_FLOP_BUDGET / (10 * max(n_users + n_items, 1))))
    return max(4, min(GRAPH_FILTER_MAX_RANK, min(n_users, n_items) // 2, by_budget))


def graph_filter_fits_in_memory(
    n_users: int, n_items: int, rank: int, available_bytes: int | None = None
) -> bool:
    """The basis holds ~4 float64 ``(n_users + n_items) x rank`` blocks at its peak; half the RAM at most."""
    available = available_bytes if available_bytes is not None else _available_memory()
    return 4 * 8 * (n_users + n_items) * (rank + 32) <= available // 2


def graph_filter_grid(config: TrainingConfig, graph: InteractionGraph) -> list[CandidateSpec]:
    """One basis at the planned rank (the fit scores smaller ranks and the betas on it without refitting)."""
    rank = config.graph_filter_rank or graph_filter_rank(graph.n_users, graph.n_items)
    params: dict[str, ParamValue] = {"rank": int(min(rank, max(graph.n_items, 1)))}
    if config.graph_filter_beta is not None:
        params["beta"] = config.graph_filter_beta
    return [CandidateSpec("graph_filter", params)]


def _torch_spec(config: TrainingConfig, model_type: CandidateType) -> CandidateSpec:
    return CandidateSpec(model_type, {"epochs": config.epochs})


def plan(config: TrainingConfig, graph: InteractionGraph, device: torch.device) -> list[CandidateSpec]:
    """The candidate specs for ``config`` on ``graph`` with ``device`` (see the module docstring)."""
    if config.model_type == "als":
        return als_grid(config, graph)
    if config.model_type == "ease":
        if not ease_fits_in_memory(graph.n_items):
            raise TrainingJobError(
                f"model_type 'ease' is offered up to {EASE_MAX_ITEMS} items (and where its dense matrices "
                f"fit in memory); this tenant has {graph.n_items} items: use 'als' or 'auto'"
            )
        return ease_grid(config, graph)
    if config.model_type == "graph_filter":
        return graph_filter_grid(config, graph)
    if config.model_type in ("lightgcn", "two_tower"):
        return [_torch_spec(config, config.model_type)]
    specs: list[CandidateSpec] = []
    if ease_fits_in_memory(graph.n_items):
        specs += ease_grid(config, graph)
    filter_specs = graph_filter_grid(config, graph)
    if graph_filter_fits_in_memory(graph.n_users, graph.n_items, int(filter_specs[0].params["rank"])):
        specs += filter_specs
    specs += als_grid(config, graph)
    if device.type == "cuda" or graph.n_edges <= LIGHTGCN_CPU_MAX_EDGES:
        specs.append(_torch_spec(config, "lightgcn"))
    return specs
