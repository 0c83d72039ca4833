"""The training loop: device-side batching, LR schedule, time budget, per-epoch callback, early stopping."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from training_jobs.data import InteractionGraph
from training_jobs.evaluation import Evaluator
from training_jobs.models.base import Recommender

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """How to train (model hyper-parameters live on the model)."""

    epochs: int
    learning_rate: float
    batch_size: int
    patience: int = 0
    """Stop after this many evaluations without a better ``ndcg_10`` (0 = never stop early)."""
    eval_every: int = 1
    budget_s: float | None = None
    """Cap on training wall time (evaluation excluded; the last epoch may stop part-way); the LR schedule
    follows elapsed time when it is set."""
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_fraction: float = 0.02
    min_lr_fraction: float = 0.02
    keep_best: bool = True
    """Restore the weights of the best evaluation at the end (validation runs only)."""
    seed: int = 0


@dataclass(frozen=True)
class EpochReport:
    """What happened in one epoch; ``metrics`` is empty when the epoch was not evaluated."""

    epoch: int
    total_epochs: int
    train_loss: float
    epoch_seconds: float
    train_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_model`."""

    epochs_run: int
    train_seconds: float
    final_loss: float
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[EpochReport]
    stop_reason: str


EpochCallback = Callable[[EpochReport], None]


class EpochCheckpoint(Protocol):
    """Where a training run keeps its state between epochs, so a retried job resumes mid-training."""

    every_s: float
    """Least seconds between two saves (a save writes the weights and the optimiser's moments)."""

    def load(self) -> dict[str, Any] | None:
        """The state an earlier attempt saved, if any."""

    def save(self, state: dict[str, Any]) -> None:
        """Keep ``state`` (tensors, numbers, lists and dicts of them) for a later attempt."""


def _training_state(runner: _EpochRunner, loop: dict[str, Any]) -> dict[str, Any]:
    """Everything an epoch boundary needs to go on as if uninterrupted (RNG states included)."""
    return {
        **loop,
        "history": [vars(report) for report in loop["history"]],
        "model": runner.model.state_dict(),
        "optimizer": runner.optimizer.state_dict(),
        "step": runner.step,
        "train_seconds": runner.train_seconds,
        "last_epoch_seconds": runner.last_epoch_seconds,
        "generator": runner.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def _restore(runner: _EpochRunner, state: dict[str, Any]) -> dict[str, Any]:
    """Put a saved state back into ``runner`` and its model; returns the loop's own variables."""
    runner.model.load_state_dict(state["model"])
    runner.optimizer.load_state_dict(state["optimizer"])
    runner.step = int(state["step"])
    runner.train_seconds = float(state["train_seconds"])
    runner.last_epoch_seconds = float(state["last_epoch_seconds"])
    runner.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    loop = {key: state[key] for key in _LOOP_KEYS}
    loop["history"] = [EpochReport(**report) for report in state["history"]]
    return loop


_LOOP_KEYS = ("epoch", "best_score", "best_epoch", "best_metrics", "best_state", "stale", "final_loss")


class _Saver:
    """Saves the training state at epoch boundaries at most every ``checkpoint.every_s`` seconds."""

    def __init__(self, checkpoint: EpochCheckpoint | None) -> None:
        self.checkpoint = checkpoint
        self.saved_at = time.monotonic()

    def maybe_save(self, runner: _EpochRunner, loop: dict[str, Any]) -> None:
        if self.checkpoint is None or time.monotonic() - self.saved_at < self.checkpoint.every_s:
            return
        self.checkpoint.save(_training_state(runner, loop))
        self.saved_at = time.monotonic()


def learning_rate_at(progress: float, settings: TrainSettings) -> float:
    """Linear warm-up then cosine decay to ``min_lr_fraction`` (or constant), by training progress 0..1."""
    base = settings.learning_rate
    if settings.schedule == "constant":
        return base
    if settings.warmup_fraction > 0 and progress < settings.warmup_fraction:
        return base * max(progress / settings.warmup_fraction, 0.05)
    span = max(1.0 - settings.warmup_fraction, 1e-9)
    decay = min(max((progress - settings.warmup_fraction) / span, 0.0), 1.0)
    floor = settings.min_lr_fraction
    return base * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * decay)))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _EpochRunner:
    """One epoch of shuffled device-side mini-batches with the scheduled learning rate."""

    def __init__(self, model: Recommender, train: InteractionGraph, settings: TrainSettings) -> None:
        self.model = model
        self.settings = settings
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(settings.seed)
        self.users = torch.as_tensor(train.users, device=self.device)
        self.items = torch.as_tensor(train.items, device=self.device)
        weights = torch.as_tensor(train.weights, device=self.device)
        self.weights = weights / weights.mean()
        self.n_edges = self.users.numel()
        self.total_steps = max(1, math.ceil(self.n_edges / settings.batch_size)) * settings.epochs
        self.optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        self.step = 0
        self.train_seconds = 0.0
        self.last_epoch_seconds = 0.0

    def _progress(self, batch_start: int) -> float:
        progress = self.step / self.total_steps
        if self.settings.budget_s:
            in_epoch = (batch_start / self.n_edges) * self.last_epoch_seconds
            progress = max(progress, (self.train_seconds + in_epoch) / self.settings.budget_s)
        return min(progress, 1.0)

    def run(self) -> float:
        """Train one epoch; returns the mean loss."""
        self.model.train()
        _synchronize(self.device)
        started = time.perf_counter()
        batch_size = self.settings.batch_size
        permutation = torch.randperm(self.n_edges, device=self.device, generator=self.generator)
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        budget = self.settings.budget_s
        for batch_start in range(0, self.n_edges, batch_size):
            if budget and batch_start and self.train_seconds + time.perf_counter() - started > budget:
                break  # the budget caps training time: stop mid-epoch rather than overrun it
            learning_rate = learning_rate_at(self._progress(batch_start), self.settings)
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
            batch = permutation[batch_start : batch_start + batch_size]
            loss = self.model.loss(self.users[batch], self.items[batch], self.weights[batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            loss_sum += loss.detach() * batch.numel()
            self.step += 1
            seen += batch.numel()
        mean_loss = float(loss_sum) / max(seen, 1)
        _synchronize(self.device)
        self.last_epoch_seconds = time.perf_counter() - started
        self.train_seconds += self.last_epoch_seconds
        return mean_loss


def train_model(
    model: Recommender,
    train: InteractionGraph,
    settings: TrainSettings,
    evaluator: Evaluator | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint: EpochCheckpoint | None = None,
) -> TrainResult:
    """Train ``model`` on the pairs of ``train``; evaluate with ``evaluator`` every ``eval_every`` epochs.

    With ``patience`` it stops after that many evaluations without a better ``ndcg_10``; with ``budget_s``
    it stops before the next epoch would exceed the budget; with ``keep_best`` it restores the best weights.
    With ``checkpoint`` it starts from the state an earlier attempt saved there and saves its own at epoch
    boundaries (weights, optimiser, RNG states, best so far), so an interrupted run goes on where it was.
    """
    runner = _EpochRunner(model, train, settings)
    saved = checkpoint.load() if checkpoint is not None else None
    loop: dict[str, Any] = (
        _restore(runner, saved)
        if saved is not None
        else dict.fromkeys(_LOOP_KEYS) | {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "stale": 0}
    )
    history: list[EpochReport] = loop.get("history", [])
    best_score: float = loop["best_score"]
    best_epoch: int = loop["best_epoch"]
    best_metrics: dict[str, float] = loop["best_metrics"] or {}
    best_state: dict[str, torch.Tensor] | None = loop["best_state"]
    stale: int = loop["stale"]
    stop_reason = "epochs"
    final_loss = math.nan if loop["final_loss"] is None else float(loop["final_loss"])
    saver = _Saver(checkpoint)
    for epoch in range(int(loop["epoch"]) + 1, settings.epochs + 1):
        final_loss = runner.run()
        if not math.isfinite(final_loss):
            raise FloatingPointError(f"training loss became {final_loss} in epoch {epoch}")
        metrics: dict[str, float] = {}
        if evaluator is not None and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
            model.eval()
            metrics = evaluator.evaluate(model.score_users)
            if metrics.get("ndcg_10", -math.inf) > best_score:
                best_score, best_epoch, best_metrics, stale = metrics["ndcg_10"], epoch, metrics, 0
                best_state = copy.deepcopy(model.state_dict()) if settings.keep_best else None
            else:
                stale += 1
        report = EpochReport(
            epoch, settings.epochs, final_loss, runner.last_epoch_seconds, runner.train_seconds, metrics
        )
        history.append(report)
        logger.info(
            "epoch %d/%d loss=%.5f time=%.2fs %s",
            epoch,
            settings.epochs,
            final_loss,
            runner.last_epoch_seconds,
            metrics,
        )
        if on_epoch is not None:
            on_epoch(report)
        if settings.patience and stale >= settings.patience:
            stop_reason = "early_stopping"
            break
        if settings.budget_s and runner.train_seconds >= settings.budget_s:
            stop_reason = "budget"
            break
        saver.maybe_save(
            runner,
            {
                "epoch": epoch,
                "best_score": best_score,
                "best_epoch": best_epoch,
                "best_metrics": best_metrics,
                "best_state": best_state,
                "stale": stale,
                "final_loss": final_loss,
                "history": history,
            },
        )

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if not best_metrics and history:
        best_epoch = history[-1].epoch
    return TrainResult(
        epochs_run=len(history),
        train_seconds=runner.train_seconds,
        final_loss=final_loss,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        history=history,
        stop_reason=stop_reason,
    )
