"""Fitting one model candidate: ALS, EASE, the graph filter in closed form; LightGCN, two-tower by gradient.

:func:`train_candidate` fits a :class:`~training_jobs.candidate_plan.CandidateSpec` on a graph and, given
a hold-out, scores it there (gradient-trained models then stop early on it and keep their best epoch).
Every candidate reads the graph's pair weights, so interaction-type weights and recency decay
(:mod:`training_jobs.snapshot`) reach all of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
import torch

from training_jobs.candidate_plan import CandidateSpec, ParamValue
from training_jobs.columns import sample_sorted
from training_jobs.config import TrainingConfig, cpu_threads_for
from training_jobs.data import IntArray, InteractionGraph
from training_jobs.evaluation import Evaluator, ScoreFn
from training_jobs.heap import retained_heap
from training_jobs.models.als import ALSParams, ALSRun
from training_jobs.models.base import Recommender
from training_jobs.models.ease import EASEParams, fit_ease, gram_matrix
from training_jobs.models.graph_filter import GraphFilterParams, fit_basis
from training_jobs.models.lightgcn import InitType, LightGCN
from training_jobs.models.two_tower import TwoTower
from training_jobs.snapshot import Catalogue
from training_jobs.trainer import EpochCallback, EpochCheckpoint, TrainSettings, train_model

ALS_DAMPING_GRID = (0.0, 0.1, 0.2)
"""Popularity damping values scored for an ALS fit (no refit needed; in a screened grid, the finalist's)."""
ALS_SCREEN_ITERATIONS = 5
"""Iterations every point of an ALS grid gets before the grid is cut to its best point, which alone runs
on to its full iteration count (a screened grid of four pairs at 15 iterations costs 30, not 60)."""
GRAPH_FILTER_BETAS = (0.4, 0.5)
"""Item degree exponents scored for each graph filter basis (free: no refit needed)."""
GRAPH_FILTER_RANK_SHARES = (0.5, 1.0)
"""Shares of the basis's rank scored for each graph filter basis (free: a cut of the same basis)."""


@dataclass(frozen=True)
class Holdout:
    """Held-out (user, item) pairs in the fit graph's index space."""

    users: IntArray
    items: IntArray


class UserSampleEvaluator(Evaluator):
    """An :class:`Evaluator` over some users of a graph: scores only them, with the full graph's indices.

    The sampled users' training pairs and held-out pairs are re-indexed ``0..len(users)-1`` and
    :meth:`evaluate` hands the score function the original user indices, so a model fitted on the whole
    graph is scored as usual, at the cost of the sampled users only.
    """

    def __init__(
        self, graph: InteractionGraph, holdout: Holdout, users: IntArray, device: torch.device | str
    ) -> None:
        position = np.full(graph.n_users, -1, dtype=np.int64)
        position[users] = np.arange(users.size)
        train_kept = position[graph.users] >= 0
        sub = InteractionGraph(
            n_users=int(users.size),
            n_items=graph.n_items,
            users=position[graph.users[train_kept]],
            items=graph.items[train_kept],
            weights=graph.weights[train_kept],
        )
        held_kept = position[holdout.users] >= 0
        super().__init__(sub, position[holdout.users[held_kept]], holdout.items[held_kept], device)
        self.users = torch.as_tensor(users.astype(np.int64), device=self.device)

    def evaluate(self, score_fn: ScoreFn) -> dict[str, float]:
        """Metrics of ``score_fn`` over the sampled users (it receives their indices in the full graph)."""
        return super().evaluate(lambda rows: score_fn(self.users[rows]))


def selection_users(holdout: Holdout, max_users: int, seed: int) -> IntArray:
    """The hold-out's users, or a seeded uniform sample of ``max_users`` of them (sorted) when more."""
    return sample_sorted(np.unique(holdout.users), max_users, seed)


def selection_evaluator(
    graph: InteractionGraph, holdout: Holdout, device: torch.device, max_users: int, seed: int
) -> Evaluator:
    """The evaluator candidates are scored with: the whole hold-out, or a fixed sample of its users.

    Full-ranking scores cost ``users x items x dim``; a few thousand users rank candidates as the whole
    split does (their metric's standard error is already far below the gaps between candidates), so big
    tenants are scored on a seeded sample of ``max_users``: fixed work, the same users for every candidate.
    """
    users = selection_users(holdout, max_users, seed)
    if users.size == np.unique(holdout.users).size:
        return Evaluator(graph, holdout.users, holdout.items, device)
    return UserSampleEvaluator(graph, holdout, users, device)


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


class _EdgeSettings(TypedDict):
    """The constructor arguments LightGCN and the two-tower model take alike from the config."""

    edge_weights: torch.Tensor
    embedding_dim: int
    temperature: float
    normalize: bool
    reg_weight: float
    foldin_blend: float


def build_model(
    config: TrainingConfig,
    graph: InteractionGraph,
    catalogue: Catalogue,
    model_type: str | None = None,
    lightgcn_init: InitType = "normal",
) -> Recommender:
    """The gradient-trained model (``lightgcn`` or ``two_tower``) over ``graph``."""
    users, items = torch.as_tensor(graph.users), torch.as_tensor(graph.items)
    shared = _EdgeSettings(
        edge_weights=torch.as_tensor(graph.weights),
        embedding_dim=config.embedding_dim,
        temperature=config.temperature,
        normalize=config.normalize,
        reg_weight=config.reg_weight,
        foldin_blend=config.foldin_blend,
    )
    if (model_type or config.model_type) == "two_tower":
        return TwoTower(
            graph.n_users,
            graph.n_items,
            users,
            items,
            item_categories=_codes(catalogue.categories),
            item_brands=_codes(catalogue.brands),
            item_price_buckets=price_buckets(catalogue.prices, config.price_buckets),
            **shared,
        )
    return LightGCN(
        graph.n_users,
        graph.n_items,
        users,
        items,
        num_layers=config.num_layers,
        loss_type=config.loss,
        num_negatives=config.num_negatives,
        init=lightgcn_init,
        **shared,
    )


LIGHTGCN_CPU_STEPS_PER_EPOCH = 32
"""On CPU a LightGCN step costs a propagation over the whole graph whatever the batch holds, so an epoch
costs (steps x graph); unless the config pins ``batch_size``, the batch grows until an epoch is at most this
many steps. On a GPU the propagation is cheap and the configured batch stays."""


def gradient_batch_size(
    config: TrainingConfig, graph: InteractionGraph, device: torch.device, model_type: str
) -> int:
    """The batch size a gradient-trained candidate trains with (see :data:`LIGHTGCN_CPU_STEPS_PER_EPOCH`)."""
    if model_type != "lightgcn" or device.type != "cpu" or "batch_size" in config.model_fields_set:
        return config.batch_size
    return max(config.batch_size, math.ceil(graph.n_edges / LIGHTGCN_CPU_STEPS_PER_EPOCH))


def lightgcn_init_for(config: TrainingConfig, batch_size: int) -> InitType:
    """The configured init; ``auto``: ``spectral`` where the CPU batch was enlarged, else ``normal``.

    An enlarged batch means few updates per epoch: starting from the graph filter instead of noise is what
    makes the few epochs a CPU affords useful there. Small tenants keep the paper's init (on the generated
    sample it validated better: NDCG@10 0.0830 vs 0.0799 with the spectral start).
    """
    if config.lightgcn_init != "auto":
        return config.lightgcn_init
    return "spectral" if batch_size > config.batch_size else "normal"


def _als_params(spec: CandidateSpec, config: TrainingConfig, device: torch.device) -> ALSParams:
    p = spec.params
    return ALSParams(
        factors=int(p["factors"]),
        regularization=float(p["regularization"]),
        alpha=float(p["alpha"]),
        iterations=int(p.get("iterations", config.als_iterations)),
        damping=float(p.get("damping", 0.0)),
        use_gpu=device.type == "cuda",
        threads=cpu_threads_for(config.cpu_threads),
        seed=config.seed,
    )


def _fitted(
    model: Recommender,
    spec: CandidateSpec,
    config: TrainingConfig,
    metrics: dict[str, float],
    **training: float | int | str,
) -> Fitted:
    """A :class:`Fitted` whose config is the job's with ``model_type`` set to the spec's."""
    model_config = config.model_copy(update={"model_type": spec.model_type})
    return Fitted(model, spec, model_config, dict(training), metrics)


def _score(evaluator: Evaluator | None, model: Recommender) -> dict[str, float]:
    """The model's metrics on the hold-out; none without one."""
    return evaluator.evaluate(model.score_users) if evaluator is not None else {}


def _scored_fit(
    model: Recommender,
    spec: CandidateSpec,
    config: TrainingConfig,
    evaluator: Evaluator | None,
    seconds: float,
    epochs_run: int = 1,
    device: str = "cpu",
) -> Fitted:
    """A closed-form fit of ``spec`` scored on the hold-out (when there is one), with its training record."""
    return _fitted(
        model,
        spec,
        config,
        _score(evaluator, model),
        train_seconds=round(seconds, 3),
        epochs_run=epochs_run,
        device=device,
    )


def _blas_share(config: TrainingConfig) -> AbstractContextManager[object]:
    """BLAS held to the job's share of the cores (more threads slow dense algebra on a busy host)."""
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(
        limits=cpu_threads_for(config.cpu_threads), user_api="blas"
    )
    return limits


def start_als(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    iterations: int,
) -> ALSRun:
    """An ALS run of ``spec`` on ``graph`` advanced by ``iterations`` (more can follow: ``run.advance``)."""
    run = ALSRun(graph, _als_params(spec, config, device))
    run.advance(iterations)
    return run


def als_fits(
    run: ALSRun,
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    evaluator: Evaluator | None,
    seconds: float,
    dampings: tuple[float, ...],
) -> list[Fitted]:
    """The run's current factors as one model per damping value (scored when there is an evaluator).

    Each spec records the iterations the run has done and its damping; ``seconds`` is the run's time.
    """
    factors = run.factors()
    out = []
    for damping in dampings:
        model = factors.model(graph, float(damping), config.foldin_blend).to(device)
        params = {**spec.params, "iterations": run.iterations_done, "damping": float(damping)}
        variant = CandidateSpec("als", params)
        out.append(
            _scored_fit(model, variant, config, evaluator, seconds, run.iterations_done, factors.device)
        )
    return out


def als_dampings(spec: CandidateSpec, scored: bool) -> tuple[float, ...]:
    """The damping values to build for ``spec``: its pinned one, else the grid when they are scored."""
    if "damping" in spec.params or not scored:
        return (float(spec.params.get("damping", 0.0)),)
    return ALS_DAMPING_GRID


def _fit_als(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    evaluator: Evaluator | None,
) -> list[Fitted]:
    """ALS factors once, then one model per damping value (scored when there is a hold-out)."""
    started = time.perf_counter()
    run = start_als(spec, graph, config, device, int(spec.params.get("iterations", config.als_iterations)))
    seconds = time.perf_counter() - started
    dampings = als_dampings(spec, evaluator is not None)
    return als_fits(run, spec, graph, config, device, evaluator, seconds, dampings)


def _fit_ease(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    evaluator: Evaluator | None,
) -> list[Fitted]:
    """EASE in closed form on the CPU, one model per L2 value, each ``X`` variant from one Gram matrix.

    ``l2`` in the spec fixes the value; else ``l2_factors`` (a ``"8/32"``-style list) times the mean item
    weight mass gives the values (every one scored when there is a hold-out). ``binary`` fits ``X`` with
    every pair at weight 1 (the pair weights still reach the other candidates); ``binary: "screened"``
    lets the hold-out choose: both variants are fitted at the screening value
    (:data:`EASE_SCREEN_FACTOR_INDEX` of the grid) and only the better one runs the rest of the grid (5
    fits instead of 8 on the default grid). BLAS is held to the job's share of the cores.
    """
    if spec.params.get("binary") != SCREENED:
        return _ease_variant(spec, graph, config, device, evaluator, bool(spec.params.get("binary", False)))
    if evaluator is None:  # nothing to choose with: the weighted X, as without the screen
        return _ease_variant(spec, graph, config, device, evaluator, False)
    points = range(len(ease_l2_values(spec, graph)))  # the grid's length is the same for both X
    screen = min(EASE_SCREEN_FACTOR_INDEX, len(points) - 1)
    weighted, binary = (
        _ease_variant(spec, graph, config, device, evaluator, x_binary, points=[screen])[0]
        for x_binary in (False, True)
    )
    winner = binary if best_score(binary) > best_score(weighted) else weighted
    # The winner's Gram matrix is built again rather than kept through the other variant's fit: one
    # dense n_items^2 matrix resident at a time, as ``ease_fits_in_memory`` assumes.
    rest = [point for point in points if point != screen]
    chosen = bool(winner.spec.params["binary"])
    return [weighted, binary, *_ease_variant(spec, graph, config, device, evaluator, chosen, points=rest)]


SELECTION_METRIC = "ndcg_10"
"""What selection ranks candidates by (on the hold-out)."""


def best_score(fitted: Fitted) -> float:
    """A fitted candidate's selection metric."""
    return fitted.metrics.get(SELECTION_METRIC, math.nan)


SCREENED = "screened"
"""``binary`` value of an EASE spec whose ``X`` variant the hold-out chooses."""
EASE_SCREEN_FACTOR_INDEX = 2
"""The L2 grid's point where the weighted and binary ``X`` are compared (128 x the mass on the default
grid: both variants rank best near it on the shops measured)."""


def _ease_variant(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    evaluator: Evaluator | None,
    binary: bool,
    *,
    points: Sequence[int] | None = None,
) -> list[Fitted]:
    """One ``X`` variant's models over the spec's L2 values (``points``: only those positions of the grid)."""
    started = time.perf_counter()
    if binary:  # every pair weighs 1 (interaction-type and recency weights left out of X)
        graph = replace(graph, weights=np.ones_like(graph.weights))
    values = ease_l2_values(spec, graph)
    if points is not None:
        values = [values[point] for point in points]
    if not values:
        return []
    with _blas_share(config):
        gram = gram_matrix(graph)
    shared_seconds = time.perf_counter() - started
    out = []
    for l2 in values:
        started = time.perf_counter()
        params = EASEParams(l2=l2, rank=int(spec.params["rank"]), seed=config.seed)
        with _blas_share(config):
            model = fit_ease(graph, params, gram).to(device)
        seconds = shared_seconds + time.perf_counter() - started
        variant = CandidateSpec("ease", {"l2": l2, "rank": params.rank, "binary": binary})
        out.append(_scored_fit(model, variant, config, evaluator, seconds))
    return out


def ease_l2_values(spec: CandidateSpec, graph: InteractionGraph) -> list[float]:
    """The spec's ``l2``, or its ``l2_factors`` times ``graph``'s mean item weight mass (at least 1)."""
    if "l2" in spec.params:
        return [float(spec.params["l2"])]
    mass = float(graph.weights.sum()) / max(graph.n_items, 1)
    factors = [float(factor) for factor in str(spec.params["l2_factors"]).split("/")]
    return [round(max(mass * factor, 1.0), 3) for factor in factors]


def _fit_graph_filter(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    evaluator: Evaluator | None,
) -> list[Fitted]:
    """One singular basis, then one model per (rank, beta) variant scored when there is a hold-out."""
    started = time.perf_counter()
    rank = int(spec.params["rank"])
    with _blas_share(config):
        basis = fit_basis(graph, rank, seed=config.seed)
    seconds = time.perf_counter() - started
    if evaluator is None or "beta" in spec.params:
        betas: tuple[float, ...] = (float(spec.params.get("beta", GraphFilterParams().beta)),)
        shares: tuple[float, ...] = (1.0,)
    else:
        betas, shares = GRAPH_FILTER_BETAS, GRAPH_FILTER_RANK_SHARES
    out = []
    for share in shares:
        for beta in betas:
            variant_rank = max(1, int(rank * share))
            params = GraphFilterParams(rank=variant_rank, beta=beta, seed=config.seed)
            model = basis.model(params).to(device)
            variant = CandidateSpec("graph_filter", {"rank": variant_rank, "beta": beta})
            out.append(_scored_fit(model, variant, config, evaluator, seconds))
    return out


def _fit_by_gradient(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    evaluator: Evaluator | None,
    on_epoch: EpochCallback | None,
    checkpoint: EpochCheckpoint | None = None,
) -> Fitted:
    """LightGCN or the two-tower: early stopping on the hold-out when there is one, else fixed epochs."""
    torch.manual_seed(config.seed)
    batch_size = gradient_batch_size(config, graph, device, spec.model_type)
    # a refit keeps the init its selection chose (``params["init"]``), even where its batch differs
    pinned = spec.params.get("init", lightgcn_init_for(config, batch_size))
    if pinned not in ("normal", "spectral"):
        raise ValueError(f"unknown LightGCN init {pinned!r}")
    init: InitType = "spectral" if pinned == "spectral" else "normal"
    net = build_model(config, graph, catalogue, spec.model_type, init).to(device)
    settings = TrainSettings(
        epochs=int(spec.params.get("epochs", config.epochs)),
        learning_rate=config.learning_rate,
        batch_size=batch_size,
        patience=config.patience if evaluator is not None else 0,
        eval_every=config.eval_every,
        budget_s=config.time_budget_s,
        schedule=config.lr_schedule,
        keep_best=evaluator is not None,
        seed=config.seed,
    )
    with retained_heap():
        result = train_model(
            net, graph, settings, evaluator=evaluator, on_epoch=on_epoch, checkpoint=checkpoint
        )
    metrics = result.best_metrics if evaluator is not None else {}
    if not metrics:
        metrics = _score(evaluator, net)
    chosen_epochs = result.best_epoch if evaluator is not None else result.epochs_run
    chosen: dict[str, ParamValue] = {**spec.params, "epochs": max(1, chosen_epochs)}
    if spec.model_type == "lightgcn":
        chosen["init"] = init
    variant = CandidateSpec(spec.model_type, chosen)
    return _fitted(
        net,
        variant,
        config,
        metrics,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        stop_reason=result.stop_reason,
        train_seconds=round(result.train_seconds, 3),
        final_train_loss=round(result.final_loss, 6),
        batch_size=batch_size,
        device=device.type,
    )


def train_candidate(
    spec: CandidateSpec,
    graph: InteractionGraph,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    holdout: Holdout | None = None,
    on_epoch: EpochCallback | None = None,
    evaluator: Evaluator | None = None,
    checkpoint: EpochCheckpoint | None = None,
) -> list[Fitted]:
    """Fit ``spec`` on ``graph``; score on ``holdout`` when given.

    Returns one :class:`Fitted` per variant that needed no refit (ALS without a pinned ``damping``
    returns one per :data:`ALS_DAMPING_GRID` value when a hold-out is given; the graph filter without a
    pinned ``beta`` one per :data:`GRAPH_FILTER_RANK_SHARES` x :data:`GRAPH_FILTER_BETAS`), else one.
    A gradient-trained model with a hold-out stops early on it and keeps its best epoch
    (``params["epochs"]`` of the returned spec); without one it runs exactly ``params["epochs"]``.
    ``evaluator`` scores instead of one built from ``holdout`` (a caller scoring many specs builds it once:
    :func:`selection_evaluator`).
    A gradient-trained model resumes from and saves to ``checkpoint`` (closed-form ones ignore it).
    """
    if evaluator is None and holdout is not None:
        evaluator = selection_evaluator(graph, holdout, device, config.selection_max_users, config.seed)
    if spec.model_type == "als":
        return _fit_als(spec, graph, config, device, evaluator)
    if spec.model_type == "ease":
        return _fit_ease(spec, graph, config, device, evaluator)
    if spec.model_type == "graph_filter":
        return _fit_graph_filter(spec, graph, config, device, evaluator)
    return [_fit_by_gradient(spec, graph, config, catalogue, device, evaluator, on_epoch, checkpoint)]
