"""``make bench-train``'s side-by-side run: our candidates and the peers on one split (see bench.py)."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from training_jobs.candidate_fit import Holdout
from training_jobs.candidate_plan import als_grid, params_text, plan
from training_jobs.candidates import Selection, refit, select_candidate
from training_jobs.config import TrainingConfig
from training_jobs.data import IntArray, InteractionGraph, load_lightgcn_dataset, split_random_holdout
from training_jobs.evaluation import Evaluator, ScoreFn, popularity_metrics
from training_jobs.fidelity import foldin_fidelity
from training_jobs.models.ease import MAX_ITEMS as EASE_MAX_ITEMS
from training_jobs.peak_memory import PeakMemory
from training_jobs.snapshot import Catalogue

Emit = Callable[[str], None]
PeerBuild = Callable[[InteractionGraph, dict[str, float]], tuple[ScoreFn, float]]
"""Fits a peer on a graph with some parameters; returns (score function, fit seconds)."""


@dataclass(frozen=True)
class BenchData:
    """A train graph, the hold-out reported once, and the catalogue (placeholder for public data)."""

    name: str
    train: InteractionGraph
    holdout_users: IntArray
    holdout_items: IntArray
    holdout_label: str
    catalogue: Catalogue


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    name: str
    params: str
    metrics: dict[str, float]
    fit_seconds: float
    select_seconds: float
    peak_mb: float
    published: bool = False
    job_cpu_seconds: float = 0.0
    """CPU seconds (all threads) of selection plus final fit: the work, whatever the machine's load."""

    @property
    def job_seconds(self) -> float:
        """Selection plus final fit: the whole job's training cost with this row's model."""
        return self.select_seconds + self.fit_seconds


def placeholder_catalogue(n_items: int) -> Catalogue:
    """Item metadata for a data set without any (ids are the indices)."""
    return Catalogue(
        item_ids=np.array([str(i) for i in range(n_items)]),
        titles=np.full(n_items, ""),
        categories=np.full(n_items, ""),
        brands=np.full(n_items, ""),
        prices=np.full(n_items, np.nan),
    )


def load_sample(config: TrainingConfig, seed: int = 42) -> BenchData:
    """The generator's default sample (10k users x 5k items x 100k interactions) as the job prepares it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from embedrec_local.sample_data import generate_sample_data
    from training_jobs.snapshot import prepare_data

    with tempfile.TemporaryDirectory() as directory:
        summary = generate_sample_data(Path(directory), seed=seed)
        interactions = pcsv.read_csv(summary.interactions_path)
        items = pcsv.read_csv(summary.items_path)
    timestamps = pc.cast(interactions["timestamp"], pa.timestamp("ms", tz="UTC"))
    interactions = interactions.set_column(
        interactions.column_names.index("timestamp"), "timestamp", timestamps
    )
    data = prepare_data(interactions, items, config)
    return BenchData("sample", data.train, data.val_users, data.val_items, "val", data.catalogue)


def load_data(args: argparse.Namespace, config: TrainingConfig) -> BenchData:
    """``--sample`` or ``--data DIR``."""
    if args.sample:
        return load_sample(config)
    dataset = load_lightgcn_dataset(args.data)
    train = dataset.train
    return BenchData(
        str(args.data),
        train,
        dataset.test_users,
        dataset.test_items,
        "test",
        placeholder_catalogue(train.n_items),
    )


def binary_matrix(graph: InteractionGraph) -> sp.csr_matrix:
    """Users x items 0/1 CSR (what a practitioner's script feeds the peers)."""
    return sp.csr_matrix(
        (np.ones(graph.n_edges, dtype=np.float32), (graph.users, graph.items)),
        shape=(graph.n_users, graph.n_items),
    )


def _factor_scores(users_f: np.ndarray, items_f: np.ndarray) -> ScoreFn:
    user_t, item_t = torch.as_tensor(users_f), torch.as_tensor(items_f)

    def score(users: torch.Tensor) -> torch.Tensor:
        return user_t[users.cpu()] @ item_t.T

    return score


def implicit_als(
    graph: InteractionGraph, factors: int, reg: float, alpha: float, threads: int, seed: int
) -> tuple[ScoreFn, float]:
    """``implicit`` ALS on the binary matrix; returns (score function, fit seconds)."""
    import implicit.cpu.als
    from threadpoolctl import threadpool_limits

    matrix = binary_matrix(graph)
    with threadpool_limits(limits=1, user_api="blas"):
        model = implicit.cpu.als.AlternatingLeastSquares(
            factors=factors,
            regularization=reg,
            alpha=alpha,
            iterations=15,
            num_threads=threads,
            random_state=seed,
        )
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        seconds = time.perf_counter() - started
    return _factor_scores(np.asarray(model.user_factors), np.asarray(model.item_factors)), seconds


def ease_reference(graph: InteractionGraph, l2: float, threads: int) -> tuple[ScoreFn, float]:
    """The textbook EASE on the binary matrix, scores ``X B`` with the full dense ``B``."""
    from threadpoolctl import threadpool_limits

    matrix = binary_matrix(graph)
    started = time.perf_counter()
    with threadpool_limits(limits=threads, user_api="blas"):
        gram = (matrix.T @ matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += l2
        precision = np.linalg.inv(gram)
        weights = (precision / (-np.diag(precision))[None, :]).astype(np.float32)
        weights[np.diag_indices_from(weights)] = 0.0
    seconds = time.perf_counter() - started
    dense_b = torch.as_tensor(weights)

    def score(users: torch.Tensor) -> torch.Tensor:
        rows = torch.as_tensor(matrix[users.cpu().numpy()].toarray())
        return rows @ dense_b

    return score, seconds


def _grid_then_refit(
    name: str,
    grid: list[dict[str, float]],
    build: PeerBuild,
    fit: InteractionGraph,
    selection: Evaluator,
    data: BenchData,
    holdout: Evaluator,
    emit: Emit,
) -> Row:
    """Choose a peer's parameters on the validation split, refit on train, score the hold-out once."""
    best: tuple[float, dict[str, float]] | None = None
    started, cpu_started = time.perf_counter(), time.process_time()
    for params in grid:
        score, seconds = build(fit, params)
        metrics = selection.evaluate(score)
        emit(f"  [{name} val] {params} ndcg@20={metrics['ndcg_20']:.4f} fit_s={seconds:.1f}")
        if best is None or metrics["ndcg_20"] > best[0]:
            best = (metrics["ndcg_20"], params)
    assert best is not None
    select_seconds = time.perf_counter() - started
    meter = PeakMemory(torch.device("cpu"))
    with meter.watch():
        score, seconds = build(data.train, best[1])
    cpu_seconds = time.process_time() - cpu_started
    metrics = holdout.evaluate(score)
    label = ",".join(f"{key}={value}" for key, value in best[1].items())
    return Row(name, label, metrics, seconds, select_seconds, meter.peak_mb, job_cpu_seconds=cpu_seconds)


def _our_rows(
    selection: Selection,
    data: BenchData,
    config: TrainingConfig,
    device: torch.device,
    holdout: Evaluator,
    select_seconds: float,
    select_cpu_seconds: float,
    fidelity: bool,
    emit: Emit,
) -> tuple[list[Row], Row]:
    """Each model type's best spec refit on train and scored on the hold-out; the chosen one marked."""
    rows: list[Row] = []
    published: Row | None = None
    for kind, best in selection.best_per_model_type().items():
        spec = best.spec
        chosen = spec == selection.chosen
        meter = PeakMemory(device)
        cpu_started = time.process_time()
        with meter.watch():
            fitted = refit(
                Selection(spec, {}, selection.results, selection.fitted),
                data.train,
                config,
                data.catalogue,
                device,
            )
        refit_cpu_seconds = time.process_time() - cpu_started
        metrics = holdout.evaluate(fitted.model.score_users)
        row = Row(
            f"ours {kind}" + (" *" if chosen else ""),
            params_text(spec.params),
            metrics,
            float(fitted.training.get("train_seconds", 0.0)),
            select_seconds,
            meter.peak_mb,
            chosen,
            select_cpu_seconds + refit_cpu_seconds,
        )
        rows.append(row)
        if fidelity:
            fid = foldin_fidelity(fitted.model, data.train, holdout)
            emit(
                f"  [fold-in {kind}] trained ndcg@10={fid.trained_ndcg_10:.4f} "
                f"fold-in ndcg@10={fid.foldin_ndcg_10:.4f} ratio={fid.ratio:.3f}"
            )
        if chosen:
            published = row
    assert published is not None
    return rows, published


def print_table(rows: list[Row], emit: Emit) -> None:
    """One table: recall/NDCG at 10 and 20, final fit, selection and whole-job seconds, peak memory.

    ``job_s`` = ``select_s + fit_s``: what the whole job costs with that row's final fit (for ours, the
    selection phase is shared by every row; the job refits only the published one).
    """
    emit(
        f"{'model':<22} {'recall@20':>9} {'ndcg@20':>8} {'recall@10':>9} {'ndcg@10':>8} "
        f"{'fit_s':>7} {'select_s':>8} {'job_s':>7} {'job_cpu_s':>9} {'peak_mb':>8}  params"
    )
    for row in rows:
        m = row.metrics
        emit(
            f"{row.name:<22} {m['recall_20']:>9.4f} {m['ndcg_20']:>8.4f} {m['recall_10']:>9.4f} "
            f"{m['ndcg_10']:>8.4f} {row.fit_seconds:>7.1f} {row.select_seconds:>8.1f} "
            f"{row.job_seconds:>7.1f} {row.job_cpu_seconds:>9.1f} {row.peak_mb:>8.0f}  {row.params}"
        )


def cost_line(published: Row, peer: Row) -> str:
    """The published candidate's whole-job seconds against a peer's, and the ratio."""
    ratio = published.job_seconds / peer.job_seconds if peer.job_seconds > 0 else float("inf")
    cpu = published.job_cpu_seconds / peer.job_cpu_seconds if peer.job_cpu_seconds > 0 else float("inf")
    return (
        f"job_s: {published.name.removesuffix(' *')} {published.job_seconds:.1f} "
        f"(select {published.select_seconds:.1f} + fit {published.fit_seconds:.1f}) vs {peer.name} "
        f"{peer.job_seconds:.1f} (select {peer.select_seconds:.1f} + fit {peer.fit_seconds:.1f}): "
        f"{ratio:.2f}x wall; cpu {published.job_cpu_seconds:.1f} vs {peer.job_cpu_seconds:.1f}: {cpu:.2f}x"
    )


def parse_pairs(text: str) -> list[tuple[float, float]]:
    """``"0.1:10,1:10"`` -> [(0.1, 10.0), (1.0, 10.0)] (regularisation:alpha pairs)."""
    pairs = []
    for chunk in filter(None, (part.strip() for part in text.split(","))):
        reg, _, alpha = chunk.partition(":")
        pairs.append((float(reg), float(alpha)))
    if not pairs:
        raise ValueError(f"no reg:alpha pairs in {text!r}")
    return pairs


def run_candidates(args: argparse.Namespace, device: torch.device, emit: Emit) -> dict[str, float]:
    """The side-by-side run; returns the published candidate's summary."""
    config = TrainingConfig(
        model_type=args.model_type,
        device=device.type,  # type: ignore[arg-type]
        cpu_threads=args.threads,
        seed=args.seed,
        epochs=args.epochs or 30,
        als_factors=args.als_factors,
        **({"lightgcn_init": args.lightgcn_init} if args.lightgcn_init else {}),
    )
    loaded = time.perf_counter()
    data = load_data(args, config)
    train = data.train
    fit, sel_u, sel_i = split_random_holdout(train, args.val_fraction, args.seed)
    emit(
        f"data={data.name} users={train.n_users} items={train.n_items} train_pairs={train.n_edges} "
        f"{data.holdout_label}_pairs={data.holdout_users.size} validation_pairs={sel_u.size} "
        f"device={device.type} threads={args.threads} load_s={time.perf_counter() - loaded:.1f}"
    )
    holdout = Evaluator(train, data.holdout_users, data.holdout_items, device)
    selection_eval = Evaluator(fit, sel_u, sel_i, device)
    rows = [Row("popularity", "", popularity_metrics(holdout, train), 0.0, 0.0, 0.0)]

    started, cpu_started = time.perf_counter(), time.process_time()
    specs = None
    if args.als_grid:
        pairs = parse_pairs(args.als_grid)
        specs = [spec for spec in plan(config, fit, device) if spec.model_type != "als"]
        specs += als_grid(config, fit, pairs)
    selection = select_candidate(
        fit,
        Holdout(sel_u, sel_i),
        config,
        data.catalogue,
        device,
        specs=specs,
        on_candidate=lambda result: emit(
            f"  [ours val] {result.spec.label} ndcg@10={result.metrics.get('ndcg_10', float('nan')):.4f} "
            f"fit_s={result.train_seconds:.1f}" + (f" FAILED {result.error}" if result.error else "")
        ),
    )
    ours, published = _our_rows(
        selection,
        data,
        config,
        device,
        holdout,
        time.perf_counter() - started,
        time.process_time() - cpu_started,
        args.fidelity,
        emit,
    )
    if not args.no_peers:
        threads = args.threads
        peer_grid = [{"reg": reg, "alpha": alpha} for reg, alpha in parse_pairs(args.peer_grid)]

        def peer(name: str, grid: list[dict[str, float]], build: PeerBuild) -> Row:
            return _grid_then_refit(name, grid, build, fit, selection_eval, data, holdout, emit)

        rows.append(
            peer(
                f"implicit ALS {args.peer_factors}",
                peer_grid,
                lambda graph, p: implicit_als(
                    graph, args.peer_factors, p["reg"], p["alpha"], threads, args.seed
                ),
            )
        )
        if train.n_items <= EASE_MAX_ITEMS:
            rows.append(
                peer(
                    "EASE reference",
                    [{"l2": l2} for l2 in (100.0, 300.0, 1000.0)],
                    lambda graph, p: ease_reference(graph, p["l2"], threads),
                )
            )
        else:
            emit(f"  [EASE reference] skipped: {train.n_items} items > {EASE_MAX_ITEMS}")
    peers = [row for row in rows if row.name.startswith("implicit ALS")]
    rows += ours
    emit(f"hold-out: {data.holdout_label}; * = the candidate the job would publish (chosen on validation)")
    print_table(rows, emit)
    for peer_row in peers:
        emit(cost_line(published, peer_row))
    return {
        "recall_20": published.metrics["recall_20"],
        "ndcg_20": published.metrics["ndcg_20"],
        "train_s": published.fit_seconds,
        "epochs": float(
            dict(selection.chosen.params).get("epochs", dict(selection.chosen.params).get("iterations", 1))
        ),
        "device": 1.0 if device.type == "cuda" else 0.0,
    }
