"""Model candidates of one training job: which to try, fit each, pick the best, refit the winner.

API (used by :mod:`training_jobs.job`):

- :func:`plan` - the candidate specs for a config, a tenant's size and the hardware. ``model_type``
  ``auto`` plans EASE (up to :data:`EASE_MAX_ITEMS` items, and only where its dense matrices fit in
  memory), ALS (always) and LightGCN (on a GPU, or on CPU for small tenants); ``als``/``ease`` plan a
  small grid of that model (a value set in the config pins that hyper-parameter); ``lightgcn``/
  ``two_tower`` plan the one configured model.
- :func:`select_candidate` - fit every planned spec on the ``fit`` graph, score it on the ``selection``
  hold-out (NDCG@10), record failures (out of memory, non-finite values, any exception) with their reason,
  and return a :class:`Selection`: the chosen spec with its hyper-parameters fixed (epochs included, for
  gradient-trained models: the best epoch on the selection split), every candidate's outcome, and the
  chosen model as fitted on ``fit``. Raises :class:`TrainingJobError` when no candidate succeeded.
- :func:`refit` - train the chosen spec again on other data (e.g. every interaction in the window), with
  a fixed amount of work (no early stopping, nothing held out), and return a :class:`Fitted` model.
- :func:`train_candidate` - fit one spec (used by both).

Every candidate reads the graph's pair weights, so interaction-type weights and recency decay
(:mod:`training_jobs.snapshot`) reach all of them.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from contract.model_types import TrainedModelType
from training_jobs.config import TrainingConfig
from training_jobs.data import IntArray, InteractionGraph
from training_jobs.errors import TrainingJobError
from training_jobs.evaluation import Evaluator
from training_jobs.models.als import ALSParams, fit_als_factors
from training_jobs.models.base import Recommender
from training_jobs.models.ease import MAX_ITEMS as EASE_MAX_ITEMS
from training_jobs.models.ease import EASEParams, fit_ease
from training_jobs.models.lightgcn import LightGCN
from training_jobs.models.two_tower import TwoTower
from training_jobs.snapshot import Catalogue
from training_jobs.trainer import EpochCallback, TrainSettings, train_model

logger = logging.getLogger(__name__)

CandidateType = TrainedModelType
ParamValue = float | int | bool | str
SELECTION_METRIC = "ndcg_10"
LIGHTGCN_CPU_MAX_EDGES = 200_000
"""On CPU, ``auto`` adds LightGCN only up to this many training pairs (its cost per epoch is the graph)."""
ALS_DAMPING_GRID = (0.0, 0.1, 0.2)
"""Popularity damping values scored for each ALS fit (free: no refit needed)."""


@dataclass(frozen=True)
class Holdout:
    """Held-out (user, item) pairs in the fit graph's index space."""

    users: IntArray
    items: IntArray


@dataclass(frozen=True)
class CandidateSpec:
    """One model with its hyper-parameters (for gradient-trained models ``epochs`` is one of them)."""

    model_type: CandidateType
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``als(factors=128,alpha=10)`` - stable, for logs, metrics and the manifest."""
        inner = ",".join(f"{key}={value}" for key, value in sorted(self.params.items()))
        return f"{self.model_type}({inner})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"model_type": self.model_type, "params": dict(self.params)}


@dataclass(frozen=True)
class CandidateResult:
    """The outcome of one candidate on the selection split (``error`` set when it failed)."""

    spec: CandidateSpec
    metrics: dict[str, float]
    train_seconds: float
    peak_memory_mb: float
    device: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the candidate produced a scored model."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the manifest)."""
        return {
            **self.spec.to_dict(),
            "status": "ok" if self.ok else "failed",
            "metrics": {name: round(value, 6) for name, value in self.metrics.items()},
            "train_seconds": round(self.train_seconds, 3),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "device": self.device,
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class Fitted:
    """A trained model with the spec and config that produced it and what training did."""

    model: Recommender
    spec: CandidateSpec
    config: TrainingConfig
    """The job's config with ``model_type`` set to the spec's (what the manifest records)."""
    training: dict[str, float | int | str]
    metrics: dict[str, float] = field(default_factory=dict)
    """Metrics on the hold-out it was scored on (empty when none was given)."""


@dataclass(frozen=True)
class Selection:
    """What :func:`select_candidate` decided and why."""

    chosen: CandidateSpec
    metrics: dict[str, float]
    """The chosen candidate's metrics on the selection split."""
    results: tuple[CandidateResult, ...]
    fitted: Fitted
    """The chosen model as fitted on the fit split."""

    @property
    def failures(self) -> tuple[CandidateResult, ...]:
        """Candidates that failed, with their reasons."""
        return tuple(result for result in self.results if not result.ok)

    def job_metrics(self) -> dict[str, float | str]:
        """Flat metrics for the job record: the choice, then per model type its best run or its failure."""
        out: dict[str, float | str] = {"selected_model": self.chosen.label}
        for result in self.results:
            key = f"candidate_{result.spec.model_type}"
            best = out.get(f"{key}_{SELECTION_METRIC}")
            if result.ok:
                score = result.metrics.get(SELECTION_METRIC, 0.0)
                if best is None or (isinstance(best, float) and score > best):
                    out[f"{key}_{SELECTION_METRIC}"] = round(score, 6)
                    out[f"{key}_recall_20"] = round(result.metrics.get("recall_20", 0.0), 6)
                    out[f"{key}_train_seconds"] = round(result.train_seconds, 3)
                    out[f"{key}_peak_memory_mb"] = round(result.peak_memory_mb, 1)
            else:
                previous = out.get(f"{key}_error")
                reason = f"{result.spec.label}: {result.error}"
                out[f"{key}_error"] = f"{previous}; {reason}"[:500] if previous else reason[:500]
        return out

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``selection`` object."""
        return {
            "metric": SELECTION_METRIC,
            "chosen": self.chosen.to_dict(),
            "candidates": [result.to_dict() for result in self.results],
        }


# ---------------------------------------------------------------------------------------------- planning


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


def ease_grid(config: TrainingConfig, graph: InteractionGraph) -> list[CandidateSpec]:
    """EASE at a few L2 strengths (relative to the mean item weight mass, so the grid fits any scale)."""
    mass = float(graph.weights.sum()) / max(graph.n_items, 1)
    if config.ease_l2 is not None:
        l2_values: list[float] = [config.ease_l2]
    else:
        l2_values = [round(max(mass * factor, 1.0), 3) for factor in (8.0, 32.0, 128.0)]
    rank = min(config.ease_rank, graph.n_items)
    return [CandidateSpec("ease", {"l2": l2, "rank": rank}) for l2 in l2_values]


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
    if config.model_type in ("lightgcn", "two_tower"):
        return [_torch_spec(config, config.model_type)]
    specs: list[CandidateSpec] = []
    if ease_fits_in_memory(graph.n_items):
        specs += ease_grid(config, graph)
    specs += als_grid(config, graph)
    if device.type == "cuda" or graph.n_edges <= LIGHTGCN_CPU_MAX_EDGES:
        specs.append(_torch_spec(config, "lightgcn"))
    return specs


# ---------------------------------------------------------------------------------------------- training


def _codes(values: npt.NDArray[Any]) -> torch.Tensor:
    """Dense integer codes of string values; code 0 is reserved for the empty string (unknown)."""
    _, inverse = np.unique(np.concatenate([[""], values]), return_inverse=True)
    return torch.as_tensor(inverse[1:].astype(np.int64))


def price_buckets(prices: npt.NDArray[np.float64], n_buckets: int) -> torch.Tensor:
    """Quantile buckets 1..n of the finite prices; missing prices get bucket 0."""
    finite = np.isfinite(prices)
    buckets = np.zeros(prices.size, dtype=np.int64)
    if finite.any():
        edges = np.unique(np.quantile(prices[finite], np.linspace(0, 1, n_buckets + 1)[1:-1]))
        buckets[finite] = np.searchsorted(edges, prices[finite], side="right") + 1
    return torch.as_tensor(buckets)


def build_model(
    config: TrainingConfig, graph: InteractionGraph, catalogue: Catalogue, model_type: str | None = None
) -> Recommender:
    """The gradient-trained model (``lightgcn`` or ``two_tower``) over ``graph``."""
    weights = torch.as_tensor(graph.weights)
    users, items = torch.as_tensor(graph.users), torch.as_tensor(graph.items)
    if (model_type or config.model_type) == "two_tower":
        return TwoTower(
            graph.n_users,
            graph.n_items,
            users,
            items,
            item_categories=_codes(catalogue.categories),
            item_brands=_codes(catalogue.brands),
            item_price_buckets=price_buckets(catalogue.prices, config.price_buckets),
            edge_weights=weights,
            embedding_dim=config.embedding_dim,
            temperature=config.temperature,
            normalize=config.normalize,
            reg_weight=config.reg_weight,
            foldin_blend=config.foldin_blend,
        )
    return LightGCN(
        graph.n_users,
        graph.n_items,
        users,
        items,
        edge_weights=weights,
        embedding_dim=config.embedding_dim,
        num_layers=config.num_layers,
        loss_type=config.loss,
        num_negatives=config.num_negatives,
        temperature=config.temperature,
        normalize=config.normalize,
        reg_weight=config.reg_weight,
        foldin_blend=config.foldin_blend,
    )


class PeakMemory:
    """Peak resident memory (MB) of the process while a block runs (sampled), or CUDA's peak allocation."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _rss_mb() -> float:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    @contextmanager
    def watch(self) -> Iterator[PeakMemory]:
        self.peak_mb = self._rss_mb()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            self._stop.set()
            sampler.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            if self.device.type == "cuda":
                self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


def _cpu_threads(config: TrainingConfig) -> int:
    return config.cpu_threads or max(1, (os.cpu_count() or 2) // 2)


def _als_params(spec: CandidateSpec, config: TrainingConfig, device: torch.device) -> ALSParams:
    p = spec.params
    return ALSParams(
        factors=int(p["factors"]),
        regularization=float(p["regularization"]),
        alpha=float(p["alpha"]),
        iterations=int(p.get("iterations", config.als_iterations)),
        damping=float(p.get("damping", 0.0)),
        use_gpu=device.type == "cuda",
        threads=_cpu_threads(config),
        seed=config.seed,
    )


def train_candidate(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    holdout: Holdout | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[Fitted]:
    """Fit ``spec`` on ``graph``; score on ``holdout`` when given.

    Returns one :class:`Fitted` per variant that needed no refit (ALS without a pinned ``damping``
    returns one per :data:`ALS_DAMPING_GRID` value when a hold-out is given), else one.
    A gradient-trained model with a hold-out stops early on it and keeps its best epoch
    (``params["epochs"]`` of the returned spec); without one it runs exactly ``params["epochs"]``.
    """
    evaluator = Evaluator(graph, holdout.users, holdout.items, device) if holdout is not None else None
    started = time.perf_counter()
    model_config = config.model_copy(update={"model_type": spec.model_type})
    if spec.model_type == "als":
        params = _als_params(spec, config, device)
        factors = fit_als_factors(graph, params)
        seconds = time.perf_counter() - started
        dampings = [params.damping] if "damping" in spec.params or evaluator is None else ALS_DAMPING_GRID
        out = []
        for damping in dampings:
            model = factors.model(graph, float(damping), config.foldin_blend).to(device)
            metrics = evaluator.evaluate(model.score_users) if evaluator is not None else {}
            variant = CandidateSpec("als", {**spec.params, "damping": float(damping)})
            training: dict[str, float | int | str] = {
                "train_seconds": round(seconds, 3),
                "epochs_run": params.iterations,
                "device": factors.device,
            }
            out.append(Fitted(model, variant, model_config, training, metrics))
        return out
    if spec.model_type == "ease":
        ease_params = EASEParams(l2=float(spec.params["l2"]), rank=int(spec.params["rank"]), seed=config.seed)
        from threadpoolctl import threadpool_limits

        # BLAS threads beyond the job's share of the cores make dense algebra far slower on a busy host
        with threadpool_limits(limits=_cpu_threads(config), user_api="blas"):
            model = fit_ease(graph, ease_params).to(device)
        seconds = time.perf_counter() - started
        metrics = evaluator.evaluate(model.score_users) if evaluator is not None else {}
        ease_training: dict[str, float | int | str] = {
            "train_seconds": round(seconds, 3),
            "epochs_run": 1,
            "device": "cpu",
        }
        return [Fitted(model, spec, model_config, ease_training, metrics)]
    torch.manual_seed(config.seed)
    net = build_model(config, graph, catalogue, spec.model_type).to(device)
    epochs = int(spec.params.get("epochs", config.epochs))
    settings = TrainSettings(
        epochs=epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        patience=config.patience if evaluator is not None else 0,
        eval_every=config.eval_every,
        budget_s=config.time_budget_s,
        schedule=config.lr_schedule,
        keep_best=evaluator is not None,
        seed=config.seed,
    )
    result = train_model(net, graph, settings, evaluator=evaluator, on_epoch=on_epoch)
    metrics = result.best_metrics if evaluator is not None else {}
    if evaluator is not None and not metrics:
        metrics = evaluator.evaluate(net.score_users)
    chosen_epochs = result.best_epoch if evaluator is not None else result.epochs_run
    variant = CandidateSpec(spec.model_type, {**spec.params, "epochs": max(1, chosen_epochs)})
    torch_training: dict[str, float | int | str] = {
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "train_seconds": round(result.train_seconds, 3),
        "final_train_loss": round(result.final_loss, 6),
        "device": device.type,
    }
    return [Fitted(net, variant, model_config, torch_training, metrics)]


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return re.sub(r"\s+", " ", text)[:300]


def select_candidate(
    fit: InteractionGraph,
    selection: Holdout,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
    specs: Sequence[CandidateSpec] | None = None,
) -> Selection:
    """Fit each planned spec on ``fit``, score it on ``selection``, keep the best by NDCG@10.

    A candidate that raises (out of memory, non-finite factors or loss, anything else) is recorded with
    its reason and the others go on; :class:`TrainingJobError` when none succeeded.
    """
    planned = list(specs) if specs is not None else plan(config, fit, device)
    results: list[CandidateResult] = []
    best: Fitted | None = None
    for spec in planned:
        meter = PeakMemory(device)
        started = time.perf_counter()
        fitted: list[Fitted] = []
        error: str | None = None
        try:
            with meter.watch():
                fitted = train_candidate(spec, fit, config, catalogue, device, selection, on_epoch)
        except (TrainingJobError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a failed candidate is recorded; the others still run
            logger.warning("candidate %s failed: %s", spec.label, exc)
            error = _reason(exc)
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        seconds = time.perf_counter() - started
        if error is not None:
            result = CandidateResult(spec, {}, seconds, meter.peak_mb, device.type, error)
            results.append(result)
            if on_candidate is not None:
                on_candidate(result)
            continue
        for candidate in fitted:
            score = candidate.metrics.get(SELECTION_METRIC, math.nan)
            result = CandidateResult(
                candidate.spec,
                candidate.metrics,
                float(candidate.training.get("train_seconds", seconds)),
                meter.peak_mb,
                str(candidate.training.get("device", device.type)),
                None if math.isfinite(score) else f"{SELECTION_METRIC} is {score}",
            )
            results.append(result)
            if on_candidate is not None:
                on_candidate(result)
            logger.info("candidate %s: %s", candidate.spec.label, candidate.metrics)
            if result.ok and (best is None or score > best.metrics[SELECTION_METRIC]):
                best = candidate
    if best is None:
        reasons = "; ".join(f"{result.spec.label}: {result.error}" for result in results)
        raise TrainingJobError(f"no model candidate succeeded ({reasons or 'none planned'})")
    return Selection(best.spec, dict(best.metrics), tuple(results), best)


def refit(
    selection: Selection,
    train: InteractionGraph,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
) -> Fitted:
    """Train the chosen spec on ``train`` with the chosen hyper-parameters and a fixed amount of work.

    Gradient-trained models run the selected number of epochs (no hold-out, no early stopping, no time
    budget beyond the config's); ALS/EASE refit in closed form with the selected values.
    """
    spec = selection.chosen
    fitted = train_candidate(spec, train, config, catalogue, device, None, on_epoch)[0]
    return replace(fitted, spec=spec)
