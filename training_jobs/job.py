"""One training job: snapshot -> time split -> select -> gate -> refit -> export -> publish -> job record."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import torch

from contract import layout
from training_jobs.active_model import ActiveModel, ActiveModelUnreadable, load_active_model
from training_jobs.artifacts import build_artifacts, publish_artifacts
from training_jobs.candidate_fit import Holdout
from training_jobs.candidates import refit, select_candidate
from training_jobs.checkpoints import JobCheckpoints
from training_jobs.config import JobArguments, TrainingConfig, cpu_threads_for
from training_jobs.errors import DatasetError, TrainingJobError
from training_jobs.export import build_user_tower_onnx
from training_jobs.gate import judge
from training_jobs.gate_holdout import all_for_refit, time_split
from training_jobs.gate_scoring import ServedModel
from training_jobs.snapshot import prepare_data, read_parquet
from training_jobs.storage import S3ObjectStore, TrainingJobRepository, parse_s3_uri
from training_jobs.trainer import EpochReport

logger = logging.getLogger(__name__)

#: Progress share of the selection run; the refit on the whole window takes the rest (up to 99 %).
SELECTION_PROGRESS = 80


@dataclass(frozen=True)
class JobOutcome:
    """What a successful job produced."""

    version: str
    artifacts_uri: str
    metrics: dict[str, Any]
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
        torch.set_num_threads(cpu_threads_for(cpu_threads))
    return torch.device(choice)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{name}": round(value, 6) for name, value in metrics.items()}


def _val_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return _prefixed("val_", metrics)


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

    1. split the window by time into fit / selection / gate holdout (:mod:`training_jobs.gate_holdout`);
    2. fit the planned candidates on fit and choose one (spec, epochs) on selection
       (:func:`training_jobs.candidates.select_candidate`), within the config's selection budget; each
       finished candidate is checkpointed (:mod:`training_jobs.checkpoints`), so a retried attempt
       fits only the ones not finished yet;
    3. measure that candidate, the active model (from its artifacts) and popularity on the gate holdout
       and decide;
    4. refit the chosen spec on every interaction of the window and publish that model, with the gate's
       numbers and verdict in its manifest.
    """
    started = time.perf_counter()
    jobs.mark_running(config.epochs)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device, config.cpu_threads)
    bucket, prefix = parse_s3_uri(args.dataset_uri)
    interactions = read_parquet(
        store.get_bytes(bucket, prefix + layout.SNAPSHOT_INTERACTIONS), layout.SNAPSHOT_INTERACTIONS
    )
    items = read_parquet(store.get_bytes(bucket, prefix + layout.SNAPSHOT_ITEMS), layout.SNAPSHOT_ITEMS)
    if interactions.num_rows == 0:
        raise DatasetError("dataset snapshot has no interactions")
    # the whole window first: unusable data fails here, with the snapshot's own message
    full = prepare_data(all_for_refit(interactions), items, config, require_validation=False)
    split = time_split(interactions, config.gate_fraction, config.validation_fraction)
    data = prepare_data(split.training_window(interactions), items, config)
    logger.info("selection data prepared: %s", data.stats)
    latest: dict[str, float] = {}
    counters = {"epoch": 0, "total": config.epochs}

    def report_selection(epoch: EpochReport) -> None:
        if epoch.metrics:
            latest.clear()
            latest.update(_val_metrics(epoch.metrics))
        counters.update(epoch=epoch.epoch, total=epoch.total_epochs)
        progress = min(SELECTION_PROGRESS, int(SELECTION_PROGRESS * epoch.epoch / epoch.total_epochs))
        metrics = {"train_loss": round(epoch.train_loss, 6), **latest}
        jobs.record_epoch(epoch.epoch, epoch.total_epochs, progress, metrics)

    checkpoints = JobCheckpoints(
        store, bucket, prefix + layout.CHECKPOINTS_FOLDER, data.train, config, device
    )
    selection = select_candidate(
        data.train,
        Holdout(data.val_users, data.val_items),
        config,
        data.catalogue,
        device,
        on_epoch=report_selection,
        log=checkpoints,
        budget_s=config.selection_budget_s,
    )
    candidate_tables = selection.fitted.model.export_tables()
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
        max_users=config.gate_max_users,
        seed=config.seed,
    )
    logger.info("gate (%s): %s", selection.chosen.label, report.decision.reason)
    selection_training = dict(selection.fitted.training)
    del candidate_tables

    def report_refit(epoch: EpochReport) -> None:
        # The epoch counters stay the selection run's (what the status shows as training); the refit
        # moves the progress from SELECTION_PROGRESS to 99 and reports its own epoch in the metrics.
        share = (99 - SELECTION_PROGRESS) * epoch.epoch / epoch.total_epochs
        metrics = {
            "train_loss": round(epoch.train_loss, 6),
            **latest,
            "refit_epoch": epoch.epoch,
            "refit_epochs": epoch.total_epochs,
        }
        progress = int(SELECTION_PROGRESS + share)
        jobs.record_epoch(counters["epoch"], counters["total"], progress, metrics)

    fitted = refit(
        selection,
        full.train,
        config,
        full.catalogue,
        device,
        on_epoch=report_refit,
        checkpoint=checkpoints.refit_epochs(full.train, selection.chosen),
    )
    selection_epochs = int(selection_training.get("epochs_run", 0))
    refit_epochs = int(fitted.training.get("epochs_run", 0))
    training: dict[str, Any] = {
        **fitted.training,
        "selection": {
            **selection.to_manifest(),
            "metrics": _prefixed("", selection.metrics),
            "training": selection_training,
            "counts": data.stats,
        },
        "refit": {"epochs": refit_epochs, "train_seconds": fitted.training.get("train_seconds")},
    }
    artifacts = build_artifacts(
        tenant_id=args.tenant_id,
        version=args.version,
        config=fitted.config,
        data=full,
        tables=fitted.model.export_tables(),
        val_metrics=report.candidate,
        popularity_metrics=report.popularity,
        training=training,
        gate=report.document,
    )
    key_prefix = layout.version_prefix(args.tenant_id, args.version)
    publish_artifacts(store, args.artifacts_bucket, key_prefix, artifacts)
    final_metrics: dict[str, Any] = {
        **_val_metrics(selection.metrics),
        **selection.job_metrics(),
        **_prefixed("gate_", report.candidate),
        **_prefixed("popularity_", report.popularity),
        **(_prefixed("active_", report.active) if report.active is not None else {}),
        "training_time_seconds": round(time.perf_counter() - started, 3),
    }
    if "final_train_loss" in fitted.training:
        final_metrics["train_loss"] = fitted.training["final_train_loss"]
    uri = f"s3://{args.artifacts_bucket}/{key_prefix}"
    epochs_run = max(1, counters["epoch"] or selection_epochs)  # the status's epoch counter (see above)
    jobs.mark_completed(args.version, uri, final_metrics, epochs_run, decision=report.decision.reason)
    return JobOutcome(
        version=args.version,
        artifacts_uri=uri,
        metrics=final_metrics,
        epochs_run=epochs_run,
        promote=report.decision.promote,
        decision=report.decision.reason,
    )
