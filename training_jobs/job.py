"""One training job, start to finish: snapshot -> train -> evaluate -> export -> publish -> job record."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training_jobs.artifacts import artifacts_prefix, build_artifacts, publish_artifacts
from training_jobs.config import JobArguments, TrainingConfig
from training_jobs.errors import TrainingJobError
from training_jobs.evaluation import Evaluator, popularity_metrics
from training_jobs.models.base import Recommender
from training_jobs.models.lightgcn import LightGCN
from training_jobs.models.two_tower import TwoTower
from training_jobs.snapshot import Catalogue, PreparedData, prepare_data, read_parquet
from training_jobs.storage import S3ObjectStore, TrainingJobRepository, parse_s3_uri
from training_jobs.trainer import EpochReport, TrainSettings, train_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What a successful job produced."""

    version: str
    artifacts_uri: str
    metrics: dict[str, float]
    epochs_run: int


def resolve_device(choice: str, cpu_threads: int | None = None) -> torch.device:
    """``auto`` -> cuda when available, else cpu; asking for cuda without one is a config error.

    On CPU, torch uses ``cpu_threads`` threads (default half the cores): with every core busy, OpenMP
    threads that share cores with other processes made an epoch 10x slower in measurements here.
    """
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainingJobError("config asks for device 'cuda' but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cpu":
        torch.set_num_threads(cpu_threads or max(1, (os.cpu_count() or 2) // 2))
    return torch.device(choice)


def _codes(values: np.ndarray) -> torch.Tensor:
    """Dense integer codes of string values; code 0 is reserved for the empty string (unknown)."""
    uniques, inverse = np.unique(np.concatenate([[""], values]), return_inverse=True)
    return torch.as_tensor(inverse[1:].astype(np.int64))


def price_buckets(prices: np.ndarray, n_buckets: int) -> torch.Tensor:
    """Quantile buckets 1..n of the finite prices; missing prices get bucket 0."""
    finite = np.isfinite(prices)
    buckets = np.zeros(prices.size, dtype=np.int64)
    if finite.any():
        edges = np.unique(np.quantile(prices[finite], np.linspace(0, 1, n_buckets + 1)[1:-1]))
        buckets[finite] = np.searchsorted(edges, prices[finite], side="right") + 1
    return torch.as_tensor(buckets)


def build_model(config: TrainingConfig, data: PreparedData, catalogue: Catalogue) -> Recommender:
    """The model the config names, over the training graph of ``data``."""
    train = data.train
    weights = torch.as_tensor(train.weights)
    users, items = torch.as_tensor(train.users), torch.as_tensor(train.items)
    if config.model_type == "two_tower":
        return TwoTower(
            train.n_users,
            train.n_items,
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
        train.n_users,
        train.n_items,
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


def _val_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {f"val_{name}": round(value, 6) for name, value in metrics.items()}


def run_training_job(
    args: JobArguments,
    config: TrainingConfig,
    store: S3ObjectStore,
    jobs: TrainingJobRepository,
) -> JobOutcome:
    """Run the job; raises :class:`TrainingJobError` (or another exception) without publishing anything."""
    started = time.perf_counter()
    jobs.mark_running(config.epochs)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device, config.cpu_threads)
    bucket, prefix = parse_s3_uri(args.dataset_uri)
    interactions = read_parquet(
        store.get_bytes(bucket, prefix + "interactions.parquet"), "interactions.parquet"
    )
    items = read_parquet(store.get_bytes(bucket, prefix + "items.parquet"), "items.parquet")
    data = prepare_data(interactions, items, config)
    logger.info("dataset prepared: %s", data.stats)

    model = build_model(config, data, data.catalogue).to(device)
    evaluator = Evaluator(data.train, data.val_users, data.val_items, device)
    baseline = popularity_metrics(evaluator, data.train)
    settings = TrainSettings(
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        patience=config.patience,
        eval_every=config.eval_every,
        budget_s=config.time_budget_s,
        schedule=config.lr_schedule,
        keep_best=True,
        seed=config.seed,
    )
    latest: dict[str, float] = {}

    def report(epoch: EpochReport) -> None:
        if epoch.metrics:
            latest.clear()
            latest.update(_val_metrics(epoch.metrics))
        progress = min(99, int(100 * epoch.epoch / epoch.total_epochs))
        metrics = {"train_loss": round(epoch.train_loss, 6), **latest}
        jobs.record_epoch(epoch.epoch, epoch.total_epochs, progress, metrics)

    try:
        result = train_model(model, data.train, settings, evaluator=evaluator, on_epoch=report)
    except FloatingPointError as exc:
        raise TrainingJobError(f"training diverged: {exc}; lower learning_rate") from exc
    val = result.best_metrics or evaluator.evaluate(model.score_users)
    tables = model.export_tables()
    training: dict[str, Any] = {
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "train_seconds": round(result.train_seconds, 3),
        "final_train_loss": round(result.final_loss, 6),
        "device": device.type,
    }
    artifacts = build_artifacts(
        tenant_id=args.tenant_id,
        version=args.version,
        config=config,
        data=data,
        tables=tables,
        val_metrics=val,
        popularity_metrics=baseline,
        training=training,
    )
    key_prefix = artifacts_prefix(args.tenant_id, args.version)
    publish_artifacts(store, args.artifacts_bucket, key_prefix, artifacts)
    final_metrics = {
        "train_loss": round(result.final_loss, 6),
        **_val_metrics(val),
        **{f"popularity_{name}": round(value, 6) for name, value in baseline.items()},
        "training_time_seconds": round(time.perf_counter() - started, 3),
    }
    uri = f"s3://{args.artifacts_bucket}/{key_prefix}"
    jobs.mark_completed(args.version, uri, final_metrics, result.epochs_run)
    return JobOutcome(
        version=args.version, artifacts_uri=uri, metrics=final_metrics, epochs_run=result.epochs_run
    )
