"""Training benchmark on a public data set (LightGCN's ``train.txt``/``test.txt``) or the generated sample.

``python -m training_jobs.bench --data DIR`` (or ``--sample``) runs OUR candidates and the peers side by
side on the same split and prints one table (``--mode candidates``, the default):

- popularity;
- ``implicit`` ALS as a practitioner would run it (binary matrix, ``--peer-factors`` factors, a small
  reg x alpha grid chosen on a validation split cut from train.txt);
- an EASE reference (binary matrix, exact dense ``B``, L2 chosen on the same validation split) where the
  item count allows;
- our candidates: the job's ``auto`` plan (graph filter and ALS always where they fit; EASE and LightGCN
  where the tenant's size allows) selected on that validation split by the job's own code
  (:func:`training_jobs.candidates.select_candidate`), each model type's best spec refit on all of
  train.txt with a fixed amount of work, and the one the job would publish marked.

The hold-out (test.txt; for ``--sample`` the job's time-based validation split) is read once, for the
report: nothing is chosen on it. ``--mode lightgcn`` is the older LightGCN-only run (learning curve,
``--tune`` candidates on the validation split, ``--budget-s``). The last line is always
``recall@20=<x> ndcg@20=<y> train_s=<t> epochs=<n> device=<cpu|cuda>`` - in candidates mode for the
candidate we would publish (``train_s`` = its refit time).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from training_jobs.data import (
    IntArray,
    InteractionGraph,
    build_graph,
    load_lightgcn_dataset,
    split_random_holdout,
)
from training_jobs.evaluation import Evaluator, popularity_metrics
from training_jobs.heap import retained_heap
from training_jobs.job import resolve_device
from training_jobs.models.lightgcn import LightGCN
from training_jobs.trainer import EpochReport, TrainSettings, train_model

DEFAULT_TUNE = "normalize=1,temperature=0.1;normalize=1,temperature=0.2;normalize=0,temperature=1.0"
"""Candidates tried on the validation split before the real run (``--tune ''`` skips the selection)."""


def _emit(line: str) -> None:
    """The benchmark's report goes to stdout, unbuffered (it is read live and by scripts)."""
    print(line, flush=True)  # noqa: T201


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training_jobs.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="directory with train.txt and test.txt")
    parser.add_argument("--sample", action="store_true", help="the generated sample instead of --data")
    parser.add_argument("--mode", choices=["candidates", "lightgcn"], default="candidates")
    parser.add_argument("--model-type", default="auto", help="candidates mode: the job's model_type")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch and implicit)")
    parser.add_argument("--peer-factors", type=int, default=256, help="implicit ALS peer's factors")
    parser.add_argument("--no-peers", action="store_true", help="candidates mode: ours only")
    parser.add_argument(
        "--peer-grid", default="0.1:10,0.1:40,1:10", help="implicit ALS peer's reg:alpha pairs"
    )
    parser.add_argument("--als-factors", type=int, default=None, help="pin our ALS factors")
    parser.add_argument(
        "--lightgcn-init",
        choices=["normal", "spectral"],
        default=None,
        help="LightGCN's init (candidates mode: default the job's 'auto'; lightgcn mode: normal)",
    )
    parser.add_argument("--als-grid", default="", help="our ALS reg:alpha pairs (default: the job's grid)")
    parser.add_argument(
        "--fidelity", action=argparse.BooleanOptionalAction, default=True, help="fold-in fidelity per model"
    )
    parser.add_argument("--budget-s", type=float, default=None, help="cap on training wall time (s)")
    parser.add_argument("--epochs", type=int, default=None, help="default: 1000 with a budget, else 60")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--loss", choices=["softmax", "bpr"], default="softmax")
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--num-negatives", type=int, default=0, help="0 = full softmax over all items")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--reg", type=float, default=0.0)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--target-recall", type=float, default=0.1830)
    parser.add_argument("--target-ndcg", type=float, default=0.1554)
    parser.add_argument("--subsample-users", type=float, default=1.0, help="fraction of users (CPU checks)")
    parser.add_argument(
        "--max-items", type=int, default=0, help="keep only the N most popular items (CPU checks)"
    )
    parser.add_argument(
        "--tune",
        default=DEFAULT_TUNE,
        help="candidates 'k=v,k=v;k=v' trained on a validation split of train.txt first; the best is used",
    )
    parser.add_argument("--tune-budget-s", type=float, default=35.0, help="training budget per candidate")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _subsample(
    train: InteractionGraph,
    holdout_u: IntArray,
    holdout_i: IntArray,
    fraction: float,
    max_items: int,
    seed: int,
) -> tuple[InteractionGraph, IntArray, IntArray]:
    """Keep a random ``fraction`` of users and (optionally) their ``max_items`` most popular items."""
    rng = np.random.default_rng(seed)
    keep_user = rng.random(train.n_users) < fraction
    in_train = keep_user[train.users]
    counts = np.bincount(train.items[in_train], minlength=train.n_items)
    items_used = counts > 0
    if max_items and items_used.sum() > max_items:
        items_used = np.zeros(train.n_items, dtype=bool)
        items_used[np.argsort(-counts, kind="stable")[:max_items]] = True
    in_train &= items_used[train.items]
    keep_user &= np.bincount(train.users[in_train], minlength=train.n_users) > 0
    in_train &= keep_user[train.users]
    user_map = np.cumsum(keep_user) - 1
    item_map = np.cumsum(items_used) - 1
    sub = build_graph(
        user_map[train.users[in_train]],
        item_map[train.items[in_train]],
        int(keep_user.sum()),
        int(items_used.sum()),
        train.weights[in_train],
    )
    keep_h = keep_user[holdout_u] & items_used[holdout_i]
    return sub, user_map[holdout_u[keep_h]], item_map[holdout_i[keep_h]]


TUNABLE = {
    "temperature": float,
    "normalize": lambda value: value.lower() in ("1", "true", "yes"),
    "lr": float,
    "layers": int,
    "dim": int,
    "reg": float,
    "batch_size": int,
    "num_negatives": int,
}


def parse_candidates(text: str) -> list[dict[str, object]]:
    """``"temperature=0.1,normalize=1;temperature=1,normalize=0"`` -> one override dict per candidate."""
    candidates = []
    for chunk in filter(None, (part.strip() for part in text.split(";"))):
        overrides: dict[str, object] = {}
        for pair in chunk.split(","):
            key, _, value = pair.partition("=")
            key = key.strip()
            if key not in TUNABLE:
                raise ValueError(f"cannot tune {key!r}; tunable: {', '.join(TUNABLE)}")
            overrides[key] = TUNABLE[key](value.strip())  # type: ignore[operator]
        candidates.append(overrides)
    return candidates


def _train_and_evaluate(
    args: argparse.Namespace,
    train: InteractionGraph,
    holdout_u: IntArray,
    holdout_i: IntArray,
    device: torch.device,
    budget_s: float | None,
    eval_every: int,
    label: str,
) -> tuple[dict[str, float], float, int]:
    """One training run; returns (final metrics, train seconds, epochs)."""
    evaluator = Evaluator(train, holdout_u, holdout_i, device)
    popular = popularity_metrics(evaluator, train)
    _emit(f"[{label}] popularity recall@20={popular['recall_20']:.4f} ndcg@20={popular['ndcg_20']:.4f}")
    torch.manual_seed(args.seed)
    model = LightGCN(
        train.n_users,
        train.n_items,
        torch.as_tensor(train.users),
        torch.as_tensor(train.items),
        embedding_dim=args.dim,
        num_layers=args.layers,
        loss_type=args.loss,
        num_negatives=args.num_negatives,
        temperature=args.temperature,
        normalize=args.normalize,
        reg_weight=args.reg,
        init=args.lightgcn_init or "normal",
    ).to(device)
    settings = TrainSettings(
        epochs=args.epochs or (1000 if budget_s else 60),
        learning_rate=args.lr,
        batch_size=args.batch_size,
        eval_every=eval_every,
        budget_s=budget_s,
        keep_best=False,
        seed=args.seed,
    )
    reached: list[EpochReport] = []

    def report(epoch: EpochReport) -> None:
        line = (
            f"[{label}] epoch {epoch.epoch:4d} time={epoch.epoch_seconds:6.2f}s loss={epoch.train_loss:.5f}"
        )
        if epoch.metrics:
            recall, ndcg = epoch.metrics["recall_20"], epoch.metrics["ndcg_20"]
            line += f" recall@20={recall:.4f} ndcg@20={ndcg:.4f} train_s={epoch.train_seconds:.1f}"
            if not reached and recall >= args.target_recall and ndcg >= args.target_ndcg:
                reached.append(epoch)
                line += "  <- target reached"
        _emit(line)

    with retained_heap():
        result = train_model(model, train, settings, evaluator=evaluator, on_epoch=report)
    final = result.history[-1].metrics or evaluator.evaluate(model.score_users)
    if reached:
        _emit(
            f"[{label}] target recall@20>={args.target_recall} ndcg@20>={args.target_ndcg} reached at epoch "
            f"{reached[0].epoch} after train_s={reached[0].train_seconds:.1f}"
        )
    else:
        _emit(f"[{label}] target recall@20>={args.target_recall} ndcg@20>={args.target_ndcg} not reached")
    _emit(
        f"[{label}] stop_reason={result.stop_reason} final recall@10={final['recall_10']:.4f} "
        f"ndcg@10={final['ndcg_10']:.4f} recall@20={final['recall_20']:.4f} ndcg@20={final['ndcg_20']:.4f}"
    )
    return final, result.train_seconds, result.epochs_run


def _select_on_validation(
    args: argparse.Namespace, train: InteractionGraph, device: torch.device
) -> argparse.Namespace:
    """Train each ``--tune`` candidate on a validation split cut from train.txt; return the best args."""
    fit, val_u, val_i = split_random_holdout(train, args.val_fraction, args.seed)
    best: tuple[float, argparse.Namespace] | None = None
    for overrides in parse_candidates(args.tune):
        candidate = argparse.Namespace(**{**vars(args), **overrides})
        label = "val " + ",".join(f"{key}={value}" for key, value in overrides.items())
        metrics, _, _ = _train_and_evaluate(
            candidate, fit, val_u, val_i, device, args.tune_budget_s, 10**6, label
        )
        if best is None or metrics["ndcg_20"] > best[0]:
            best = (metrics["ndcg_20"], candidate)
    if best is None:
        return args
    chosen = {key: getattr(best[1], key) for key in TUNABLE}
    _emit(f"selected on validation (ndcg@20={best[0]:.4f}): {chosen}")
    return best[1]


def run_benchmark(args: argparse.Namespace) -> dict[str, float]:
    """Candidates mode (see the module docstring), or LightGCN alone: select on validation, train, report."""
    device = resolve_device(args.device or "auto", args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    if args.data is None and not args.sample:
        raise ValueError("give --data DIR or --sample")
    if args.mode == "candidates":
        from training_jobs.bench_candidates import run_candidates

        return run_candidates(args, device, _emit)
    loaded_at = time.perf_counter()
    dataset = load_lightgcn_dataset(args.data)
    train = dataset.train
    holdout_u, holdout_i = dataset.test_users, dataset.test_items
    if args.split == "val":
        train, holdout_u, holdout_i = split_random_holdout(train, args.val_fraction, args.seed)
    if args.subsample_users < 1.0 or args.max_items:
        train, holdout_u, holdout_i = _subsample(
            train, holdout_u, holdout_i, args.subsample_users, args.max_items, args.seed
        )
    _emit(
        f"data={args.data} split={args.split} users={train.n_users} items={train.n_items} "
        f"train_pairs={train.n_edges} holdout_pairs={holdout_u.size} device={device} "
        f"load_s={time.perf_counter() - loaded_at:.1f}"
    )
    if args.tune:
        args = _select_on_validation(args, train, device)
    final, train_seconds, epochs = _train_and_evaluate(
        args, train, holdout_u, holdout_i, device, args.budget_s, args.eval_every, args.split
    )
    return {
        "recall_20": final["recall_20"],
        "ndcg_20": final["ndcg_20"],
        "train_s": train_seconds,
        "epochs": float(epochs),
        "device": 1.0 if device.type == "cuda" else 0.0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; always ends with the one-line summary (zeros if the run failed)."""
    args = _parse_args(argv)
    summary = {"recall_20": math.nan, "ndcg_20": math.nan, "train_s": 0.0, "epochs": 0.0, "device": 0.0}
    code = 0
    try:
        summary = run_benchmark(args)
    except Exception as exc:  # the summary line must still be printed
        _emit(f"benchmark failed: {type(exc).__name__}: {exc}")
        code = 1
    device = (
        "cuda" if summary["device"] else ("cuda" if torch.cuda.is_available() and not args.device else "cpu")
    )
    _emit(
        f"recall@20={summary['recall_20']:.4f} ndcg@20={summary['ndcg_20']:.4f} "
        f"train_s={summary['train_s']:.1f} epochs={int(summary['epochs'])} device={device}"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
