"""Model candidates of one training job: fit each planned one, pick the best, refit the winner.

The candidates are planned by :mod:`training_jobs.candidate_plan` and fitted by
:mod:`training_jobs.candidate_fit`; this module chooses among them. API (used by :mod:`training_jobs.job`):

- :func:`select_candidate` - fit every planned spec on the ``fit`` graph, score it on the ``selection``
  hold-out (NDCG@10, on a fixed sample of at most ``config.selection_max_users`` of its users; an ALS grid
  screened at a few iterations, only its best point run to the end), record failures (out of memory,
  non-finite values, any exception) with their reason, and return a :class:`Selection`: the chosen spec
  with its hyper-parameters fixed (epochs included, for gradient-trained models: the best epoch on the
  selection split), every candidate's outcome, and the chosen model as fitted on ``fit``. Raises
  :class:`TrainingJobError` when no candidate succeeded.
  With a :class:`SelectionLog` (the job's checkpoints) a retried attempt takes the candidates an
  earlier attempt finished from it instead of fitting them again; with ``budget_s`` no candidate starts
  once that much fitting time (over all attempts) is spent and one candidate has succeeded.
- :func:`refit` - train the chosen spec again on other data (e.g. every interaction in the window), with
  a fixed amount of work (no early stopping, nothing held out), and return a
  :class:`~training_jobs.candidate_fit.Fitted` model.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import torch

from training_jobs.candidate_fit import (
    ALS_SCREEN_ITERATIONS,
    SELECTION_METRIC,
    Fitted,
    Holdout,
    als_dampings,
    als_fits,
    best_score,
    selection_evaluator,
    start_als,
    train_candidate,
)
from training_jobs.candidate_plan import CandidateSpec, plan
from training_jobs.config import TrainingConfig
from training_jobs.data import InteractionGraph
from training_jobs.errors import TrainingJobError
from training_jobs.evaluation import Evaluator
from training_jobs.models.als import ALSRun
from training_jobs.peak_memory import PeakMemory
from training_jobs.snapshot import Catalogue
from training_jobs.trainer import EpochCallback, EpochCheckpoint

logger = logging.getLogger(__name__)


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

    @property
    def score(self) -> float:
        """The selection metric (NaN when the candidate has none)."""
        return self.metrics.get(SELECTION_METRIC, math.nan)

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
class Selection:
    """What :func:`select_candidate` decided and why."""

    chosen: CandidateSpec
    metrics: dict[str, float]
    """The chosen candidate's metrics on the selection split."""
    results: tuple[CandidateResult, ...]
    fitted: Fitted
    """The chosen model as fitted on the fit split."""
    skipped: tuple[CandidateSpec, ...] = ()
    """Planned candidates not started because the selection's time budget was spent."""
    resumed: int = 0
    """Planned candidates whose results came from an earlier attempt's checkpoints."""
    selection_seconds: float = 0.0
    """Fitting time over every attempt (what the budget counts)."""

    @property
    def failures(self) -> tuple[CandidateResult, ...]:
        """Candidates that failed, with their reasons."""
        return tuple(result for result in self.results if not result.ok)

    def best_per_model_type(self) -> dict[str, CandidateResult]:
        """Each model type's best successful candidate (the first of equals), in the order first seen."""
        best: dict[str, CandidateResult] = {}
        for result in self.results:
            kind = result.spec.model_type
            if result.ok and (kind not in best or result.score > best[kind].score):
                best[kind] = result
        return best

    def job_metrics(self) -> dict[str, float | str]:
        """Flat metrics for the job record: the choice, then per model type its best run or its failure."""
        out: dict[str, float | str] = {
            "selected_model": self.chosen.label,
            "selection_seconds": round(self.selection_seconds, 3),
            "candidates_skipped": len(self.skipped),
            "candidates_resumed": self.resumed,
        }
        if self.skipped:
            out["selection_stop"] = "time budget"
        for kind, result in self.best_per_model_type().items():
            key = f"candidate_{kind}"
            out[f"{key}_{SELECTION_METRIC}"] = round(result.score, 6)
            out[f"{key}_recall_20"] = round(result.metrics.get("recall_20", 0.0), 6)
            out[f"{key}_train_seconds"] = round(result.train_seconds, 3)
            out[f"{key}_peak_memory_mb"] = round(result.peak_memory_mb, 1)
        for result in self.failures:
            key = f"candidate_{result.spec.model_type}_error"
            previous = out.get(key)
            reason = f"{result.spec.label}: {result.error}"
            out[key] = f"{previous}; {reason}"[:500] if previous else reason[:500]
        return out

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``selection`` object."""
        return {
            "metric": SELECTION_METRIC,
            "chosen": self.chosen.to_dict(),
            "candidates": [result.to_dict() for result in self.results],
            "skipped": [spec.to_dict() for spec in self.skipped],
            "resumed": self.resumed,
            "seconds": round(self.selection_seconds, 3),
        }


@dataclass(frozen=True)
class FinishedCandidate:
    """Planned candidate ``index`` once fitted: its results, seconds, and its model when the new best."""

    index: int
    spec: CandidateSpec
    results: Sequence[CandidateResult]
    seconds: float
    best: Fitted | None


class SelectionLog(Protocol):
    """Where a selection keeps its finished candidates across attempts (the job's checkpoints)."""

    def finished(self, index: int, spec: CandidateSpec) -> tuple[CandidateResult, ...] | None:
        """The results of planned candidate ``index`` from an earlier attempt, if it finished there."""

    def best(self) -> Fitted | None:
        """The best finished candidate of earlier attempts (its model restored from its tables)."""

    def spent_seconds(self) -> float:
        """Fitting time earlier attempts spent on the candidates they finished."""

    def epochs(self, index: int, spec: CandidateSpec) -> EpochCheckpoint | None:
        """Where planned candidate ``index`` keeps its training state between epochs (gradient models)."""

    def record(self, candidate: FinishedCandidate) -> None:
        """Keep the candidate's results (and its model when it is the new best) for a later attempt."""


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return re.sub(r"\s+", " ", text)[:300]


Finished = list[tuple[CandidateResult, Fitted | None]]
"""What fitting one planned spec gave: each variant's result with its model (none for a failure)."""


def _guarded(
    spec: CandidateSpec, device: torch.device, fit_models: Callable[[], list[Fitted]]
) -> tuple[Finished, float]:
    """Run ``fit_models`` with a memory meter; an exception becomes ``spec``'s failure (others go on)."""
    meter = PeakMemory(device)
    started = time.perf_counter()
    fitted: list[Fitted] = []
    error: str | None = None
    try:
        with meter.watch():
            fitted = fit_models()
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
        return [(CandidateResult(spec, {}, seconds, meter.peak_mb, device.type, error), None)], seconds
    out: Finished = []
    for candidate in fitted:
        score = best_score(candidate)
        result = CandidateResult(
            candidate.spec,
            candidate.metrics,
            float(candidate.training.get("train_seconds", seconds)),
            meter.peak_mb,
            str(candidate.training.get("device", device.type)),
            None if math.isfinite(score) else f"{SELECTION_METRIC} is {score}",
        )
        logger.info("candidate %s: %s", candidate.spec.label, candidate.metrics)
        out.append((result, candidate))
    return out, seconds


def _new_best(best: Fitted | None, finished: Finished) -> Fitted | None:
    """The best successful model of ``finished`` when it beats ``best`` (the first of equals), else None."""
    winner: Fitted | None = None
    for result, candidate in finished:
        current = winner or best
        if candidate is not None and result.ok and (current is None or result.score > best_score(current)):
            winner = candidate
    return winner


def screened_als(specs: Sequence[CandidateSpec], config: TrainingConfig) -> list[CandidateSpec]:
    """The ALS specs to screen (a grid of more than one whose iterations exceed the screen's), else none."""
    als = [spec for spec in specs if spec.model_type == "als"]
    iterations = [int(spec.params.get("iterations", config.als_iterations)) for spec in als]
    if len(als) < 2 or min(iterations) <= ALS_SCREEN_ITERATIONS:
        return []
    return als


def select_candidate(
    fit: InteractionGraph,
    selection: Holdout,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
    specs: Sequence[CandidateSpec] | None = None,
    log: SelectionLog | None = None,
    budget_s: float | None = None,
) -> Selection:
    """Fit each planned spec on ``fit``, score it on ``selection``, keep the best by NDCG@10.

    Every candidate is scored by one evaluator, on at most ``config.selection_max_users`` validation users
    (:func:`~training_jobs.candidate_fit.selection_evaluator`). An ALS grid is screened: every point runs
    :data:`~training_jobs.candidate_fit.ALS_SCREEN_ITERATIONS` iterations and is scored, then only the
    best point runs on to its full iterations (its damping values scored there); the screened models stay
    candidates, recorded with the iterations they had. The screened grid is one unit of work (kept in
    ``log`` under its first spec). A candidate that raises (out of memory, non-finite factors or loss,
    anything else) is recorded with its reason and the others go on; :class:`TrainingJobError` when none
    succeeded. Candidates ``log`` holds from an earlier attempt are not fitted again; once ``budget_s``
    seconds of fitting are spent (earlier attempts included) and a candidate has succeeded, the remaining
    ones are skipped.
    """
    planned = list(specs) if specs is not None else plan(config, fit, device)
    evaluator = selection_evaluator(fit, selection, device, config.selection_max_users, config.seed)
    screened = screened_als(planned, config)
    results: list[CandidateResult] = []
    best: Fitted | None = log.best() if log is not None else None
    spent = log.spent_seconds() if log is not None else 0.0
    skipped: list[CandidateSpec] = []
    resumed = 0

    def record(result: CandidateResult) -> None:
        results.append(result)
        if on_candidate is not None:
            on_candidate(result)

    for index, spec in enumerate(planned):
        if spec in screened[1:]:
            continue  # fitted with the first point of its screened grid
        unit = screened if screened and spec == screened[0] else [spec]
        earlier = log.finished(index, spec) if log is not None else None
        if earlier is not None:
            logger.info("candidate %s: finished by an earlier attempt", spec.label)
            resumed += 1
            for result in earlier:
                record(result)
            continue
        if budget_s is not None and best is not None and spent >= budget_s:
            skipped.extend(unit)
            continue
        epochs = log.epochs(index, spec) if log is not None else None
        finished, seconds = _fit_unit(unit, fit, config, catalogue, device, evaluator, on_epoch, epochs)
        spent += seconds
        winner = _new_best(best, finished)
        best = winner or best
        for result, _ in finished:
            record(result)
        if log is not None:
            log.record(FinishedCandidate(index, spec, [result for result, _ in finished], seconds, winner))
    if skipped:
        logger.warning(
            "selection budget of %.3g s spent after %.3g s: %d candidate(s) not started",
            budget_s or 0.0,
            spent,
            len(skipped),
        )
    if best is None:
        reasons = "; ".join(f"{result.spec.label}: {result.error}" for result in results)
        raise TrainingJobError(f"no model candidate succeeded ({reasons or 'none planned'})")
    return Selection(best.spec, dict(best.metrics), tuple(results), best, tuple(skipped), resumed, spent)


def _fit_unit(
    unit: Sequence[CandidateSpec],
    fit: InteractionGraph,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    evaluator: Evaluator,
    on_epoch: EpochCallback | None,
    checkpoint: EpochCheckpoint | None,
) -> tuple[Finished, float]:
    """Fit one unit of selection: a screened ALS grid, or one spec."""
    if len(unit) > 1:
        return _screen_als(unit, fit, config, device, evaluator)
    fit_models = partial(
        train_candidate,
        unit[0],
        fit,
        config,
        catalogue,
        device,
        on_epoch=on_epoch,
        checkpoint=checkpoint,
        evaluator=evaluator,
    )
    return _guarded(unit[0], device, fit_models)


def _screen_als(
    specs: Sequence[CandidateSpec],
    fit: InteractionGraph,
    config: TrainingConfig,
    device: torch.device,
    evaluator: Evaluator,
) -> tuple[Finished, float]:
    """Successive halving of an ALS grid: a short run of every point, the full run of the best one."""
    finished: Finished = []
    total = 0.0
    runs: list[tuple[float, ALSRun, CandidateSpec, float]] = []
    for spec in specs:
        holder: list[ALSRun] = []

        def short(spec: CandidateSpec = spec, holder: list[ALSRun] = holder) -> list[Fitted]:
            started = time.perf_counter()
            holder.append(start_als(spec, fit, config, device, ALS_SCREEN_ITERATIONS))
            seconds = time.perf_counter() - started
            return als_fits(holder[0], spec, fit, config, device, evaluator, seconds, (0.0,))

        outcome, seconds = _guarded(spec, device, short)
        finished += outcome
        total += seconds
        result, fitted = outcome[0]
        if fitted is not None and result.ok:
            runs.append((result.score, holder[0], spec, float(fitted.training["train_seconds"])))
    if not runs:
        return finished, total
    _, run, spec, screen_seconds = max(runs, key=lambda entry: entry[0])
    del runs  # the other runs' factors can go

    def finish() -> list[Fitted]:
        started = time.perf_counter()
        run.advance(int(spec.params.get("iterations", config.als_iterations)) - run.iterations_done)
        seconds = screen_seconds + time.perf_counter() - started
        return als_fits(run, spec, fit, config, device, evaluator, seconds, als_dampings(spec, scored=True))

    outcome, seconds = _guarded(spec, device, finish)
    return finished + outcome, total + seconds


def refit(
    selection: Selection,
    train: InteractionGraph,
    config: TrainingConfig,
    catalogue: Catalogue,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    checkpoint: EpochCheckpoint | None = None,
) -> Fitted:
    """Train the chosen spec on ``train`` with the chosen hyper-parameters and a fixed amount of work.

    Gradient-trained models run the selected number of epochs (no hold-out, no early stopping, no time
    budget beyond the config's); ALS/EASE refit in closed form with the selected values.
    """
    spec = selection.chosen
    fitted = train_candidate(spec, train, config, catalogue, device, on_epoch=on_epoch, checkpoint=checkpoint)
    return replace(fitted[0], spec=spec)
