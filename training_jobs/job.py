"""One training job, start to finish: snapshot -> train -> evaluate -> export -> publish -> job record."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from training_jobs.artifacts import artifacts_prefix, build_artifacts, publish_artifacts
from training_jobs.candidates import Holdout, select_candidate
from training_jobs.config import JobArguments, TrainingConfig
from training_jobs.errors import TrainingJobError
from training_jobs.evaluation import Evaluator, popularity_metrics
from training_jobs.snapshot import prepare_data, read_parquet
from training_jobs.storage import S3ObjectStore, TrainingJobRepository, parse_s3_uri
from training_jobs.trainer import EpochReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What a successful job produced."""

    version: str
    artifacts_uri: str
    metrics: dict[str, Any]
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

    evaluator = Evaluator(data.train, data.val_users, data.val_items, device)
    baseline = popularity_metrics(evaluator, data.train)
    latest: dict[str, float] = {}

    def report(epoch: EpochReport) -> None:
        if epoch.metrics:
            latest.clear()
            latest.update(_val_metrics(epoch.metrics))
        progress = min(99, int(100 * epoch.epoch / epoch.total_epochs))
        metrics = {"train_loss": round(epoch.train_loss, 6), **latest}
        jobs.record_epoch(epoch.epoch, epoch.total_epochs, progress, metrics)

    selection = select_candidate(
        data.train,
        Holdout(data.val_users, data.val_items),
        config,
        data.catalogue,
        device,
        on_epoch=report,
    )
    fitted = selection.fitted
    val = selection.metrics
    tables = fitted.model.export_tables()
    training: dict[str, Any] = {**fitted.training, "selection": selection.to_manifest()}
    epochs_run = int(training.get("epochs_run", 1))
    artifacts = build_artifacts(
        tenant_id=args.tenant_id,
        version=args.version,
        config=fitted.config,
        data=data,
        tables=tables,
        val_metrics=val,
        popularity_metrics=baseline,
        training=training,
    )
    key_prefix = artifacts_prefix(args.tenant_id, args.version)
    publish_artifacts(store, args.artifacts_bucket, key_prefix, artifacts)
    final_metrics: dict[str, Any] = {
        **_val_metrics(val),
        **selection.job_metrics(),
        **{f"popularity_{name}": round(value, 6) for name, value in baseline.items()},
        "training_time_seconds": round(time.perf_counter() - started, 3),
    }
    if "final_train_loss" in fitted.training:
        final_metrics["train_loss"] = fitted.training["final_train_loss"]
    uri = f"s3://{args.artifacts_bucket}/{key_prefix}"
    jobs.mark_completed(args.version, uri, final_metrics, epochs_run)
    return JobOutcome(version=args.version, artifacts_uri=uri, metrics=final_metrics, epochs_run=epochs_run)
