"""One training job: snapshot -> time split -> select -> gate -> refit -> export -> publish -> job record."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import torch

from training_jobs.artifacts import artifacts_prefix, build_artifacts, publish_artifacts
from training_jobs.config import JobArguments, TrainingConfig
from training_jobs.errors import DatasetError, TrainingJobError
from training_jobs.evaluation import Evaluator
from training_jobs.export import build_user_tower_onnx
from training_jobs.gate import (
    ActiveModel,
    ActiveModelUnreadable,
    ServedModel,
    all_for_refit,
    judge,
    load_active_model,
    time_split,
)
from training_jobs.models.base import Recommender
from training_jobs.models.lightgcn import LightGCN
from training_jobs.models.two_tower import TwoTower
from training_jobs.snapshot import Catalogue, PreparedData, prepare_data, read_parquet
from training_jobs.storage import S3ObjectStore, TrainingJobRepository, parse_s3_uri
from training_jobs.trainer import EpochReport, TrainResult, TrainSettings, train_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What a successful job produced."""

    version: str
    artifacts_uri: str
    metrics: dict[str, float]
    epochs_run: int
    promote: bool
    decision: str


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


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{name}": round(value, 6) for name, value in metrics.items()}


def _val_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return _prefixed("val_", metrics)


#: Progress share of the selection run; the refit on the whole window takes the rest (up to 99 %).
SELECTION_PROGRESS = 80


def _settings(config: TrainingConfig, epochs: int, *, selecting: bool) -> TrainSettings:
    return TrainSettings(
        epochs=epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        patience=config.patience if selecting else 0,
        eval_every=config.eval_every,
        budget_s=config.time_budget_s,
        schedule=config.lr_schedule,
        keep_best=selecting,
        seed=config.seed,
    )


def _train(
    model: Recommender,
    data: PreparedData,
    settings: TrainSettings,
    evaluator: Evaluator | None,
    on_epoch: Callable[[EpochReport], None],
) -> TrainResult:
    try:
        return train_model(model, data.train, settings, evaluator=evaluator, on_epoch=on_epoch)
    except FloatingPointError as exc:
        raise TrainingJobError(f"training diverged: {exc}; lower learning_rate") from exc


def _catalogue_ids(items: pa.Table) -> npt.NDArray[np.str_]:
    return np.asarray(pc.cast(items["item_id"], pa.string()).drop_null().to_pylist(), dtype=str)


def _read_active(
    args: JobArguments, store: S3ObjectStore
) -> tuple[ActiveModel | ActiveModelUnreadable | None, str | None]:
    """The active model (or why it cannot be read) and its version name as the key says it."""
    key = args.active_manifest_key
    if key is None:
        return None, None
    version = key.rsplit("/", 2)[-2]
    try:
        return load_active_model(store, args.artifacts_bucket, key), version
    except ActiveModelUnreadable as exc:
        logger.warning("active model %s cannot be read: %s", key, exc)
        return exc, version


def run_training_job(
    args: JobArguments,
    config: TrainingConfig,
    store: S3ObjectStore,
    jobs: TrainingJobRepository,
) -> JobOutcome:
    """Run the job; raises :class:`TrainingJobError` (or another exception) without publishing anything.

    1. split the window by time into fit / selection / gate holdout (:mod:`training_jobs.gate`);
    2. train on fit, choosing the epoch on selection;
    3. measure that candidate, the active model (from its artifacts) and popularity on the gate holdout
       and decide;
    4. refit the chosen settings on every interaction of the window and publish that model, with the
       gate's numbers and verdict in its manifest.
    """
    started = time.perf_counter()
    jobs.mark_running(config.epochs)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device, config.cpu_threads)
    bucket, prefix = parse_s3_uri(args.dataset_uri)
    interactions = read_parquet(
        store.get_bytes(bucket, prefix + "interactions.parquet"), "interactions.parquet"
    )
    items = read_parquet(store.get_bytes(bucket, prefix + "items.parquet"), "items.parquet")
    if interactions.num_rows == 0:
        raise DatasetError("dataset snapshot has no interactions")
    # the whole window first: unusable data fails here, with the snapshot's own message
    full = prepare_data(all_for_refit(interactions), items, config, require_validation=False)
    split = time_split(interactions, config.gate_fraction, config.validation_fraction)
    data = prepare_data(split.training, items, config)
    logger.info("selection data prepared: %s", data.stats)

    candidate = build_model(config, data, data.catalogue).to(device)
    evaluator = Evaluator(data.train, data.val_users, data.val_items, device)
    latest: dict[str, float] = {}

    def report_selection(epoch: EpochReport) -> None:
        if epoch.metrics:
            latest.clear()
            latest.update(_val_metrics(epoch.metrics))
        progress = min(SELECTION_PROGRESS, int(SELECTION_PROGRESS * epoch.epoch / epoch.total_epochs))
        metrics = {"train_loss": round(epoch.train_loss, 6), **latest}
        jobs.record_epoch(epoch.epoch, epoch.total_epochs, progress, metrics)

    selection = _train(
        candidate, data, _settings(config, config.epochs, selecting=True), evaluator, report_selection
    )
    selection_metrics = selection.best_metrics or evaluator.evaluate(candidate.score_users)
    candidate_tables = candidate.export_tables()
    active, active_version = _read_active(args, store)
    report = judge(
        interactions=interactions,
        catalogue_ids=_catalogue_ids(items),
        split=split,
        candidate=ServedModel(
            user_tower=build_user_tower_onnx(candidate_tables),
            item_ids=data.catalogue.item_ids,
            item_vectors=candidate_tables.item_vectors.detach().cpu().float().numpy(),
            user_ids=data.user_ids,
            trained_until_ms=split.selection_start_ms - 1,
        ),
        active=active,
        active_version=active_version,
        quality_floor=config.quality_floor,
    )
    logger.info("gate: %s", report.decision.reason)
    del candidate, evaluator

    refit_epochs = max(1, selection.best_epoch)
    model = build_model(config, full, full.catalogue).to(device)

    def report_refit(epoch: EpochReport) -> None:
        share = (99 - SELECTION_PROGRESS) * epoch.epoch / epoch.total_epochs
        metrics = {"train_loss": round(epoch.train_loss, 6), **latest}
        jobs.record_epoch(epoch.epoch, epoch.total_epochs, int(SELECTION_PROGRESS + share), metrics)

    refit = _train(model, full, _settings(config, refit_epochs, selecting=False), None, report_refit)
    training: dict[str, Any] = {
        "epochs_run": selection.epochs_run + refit.epochs_run,
        "best_epoch": selection.best_epoch,
        "stop_reason": selection.stop_reason,
        "train_seconds": round(selection.train_seconds + refit.train_seconds, 3),
        "final_train_loss": round(refit.final_loss, 6),
        "device": device.type,
        "selection": {
            "epochs_run": selection.epochs_run,
            "best_epoch": selection.best_epoch,
            "metrics": _prefixed("", selection_metrics),
            "counts": data.stats,
        },
        "refit": {"epochs": refit.epochs_run, "train_seconds": round(refit.train_seconds, 3)},
    }
    artifacts = build_artifacts(
        tenant_id=args.tenant_id,
        version=args.version,
        config=config,
        data=full,
        tables=model.export_tables(),
        val_metrics=report.candidate,
        popularity_metrics=report.popularity,
        training=training,
        gate=report.document,
    )
    key_prefix = artifacts_prefix(args.tenant_id, args.version)
    publish_artifacts(store, args.artifacts_bucket, key_prefix, artifacts)
    final_metrics = {
        "train_loss": round(refit.final_loss, 6),
        **_val_metrics(selection_metrics),
        **_prefixed("gate_", report.candidate),
        **_prefixed("popularity_", report.popularity),
        **(_prefixed("active_", report.active) if report.active is not None else {}),
        "training_time_seconds": round(time.perf_counter() - started, 3),
    }
    uri = f"s3://{args.artifacts_bucket}/{key_prefix}"
    epochs_run = selection.epochs_run + refit.epochs_run
    jobs.mark_completed(args.version, uri, final_metrics, epochs_run, decision=report.decision.reason)
    return JobOutcome(
        version=args.version,
        artifacts_uri=uri,
        metrics=final_metrics,
        epochs_run=epochs_run,
        promote=report.decision.promote,
        decision=report.decision.reason,
    )
