"""The promotion gate: one measurement for every contender on a time-split holdout, and the decision.

The gate's parts: the time split and the holdout (:mod:`training_jobs.gate_holdout`), scoring a
contender on it (:mod:`training_jobs.gate_scoring`), reading the active model from its published
artifacts (:mod:`training_jobs.active_model`); this module judges and writes the manifest's ``gate``
section.

The window is split by time into *fit*, *selection* and the *gate holdout*
(:func:`training_jobs.gate_holdout.time_split`); the holdout judges the contenders and never chooses
anything.

Contenders, all ranked over their own item set by the same code
(:func:`training_jobs.gate_scoring.holdout_metrics`, where the fold-in of each holdout user is described):

- the **candidate**: the model trained on *fit* with the settings *selection* chose, exported the way
  the published model is (the ONNX user tower and the item vectors);
- the **active model**: read from its own published artifacts (``manifest.json``, ``user_tower.onnx``,
  ``items.faiss``, ``lookup.npz``, hash-checked against the manifest);
- **popularity**: items ranked by how many users interacted with them before ``gate_start``.

Items a user interacted with before ``gate_start`` are masked; the held-out truth is the other items
the user interacted with in the judged part of the holdout.

Leak guard: the active model saw every event up to the end of its own data (``data_window.end`` of its
manifest, else its ``created_at``: the instant serving folds in after). Only events strictly newer than
that may judge it, so the judged holdout starts at ``max(gate_start, active_end + 1 ms)``; candidate and
popularity are judged on that same, possibly smaller, holdout. With no judged event left, the active model
cannot be compared fairly and it stays.

Decision, on NDCG@10 of the judged holdout: the candidate is promoted only if it beats popularity
(a floor), reaches ``quality_floor`` and beats the active model (when there is one that could be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from training_jobs.active_model import ActiveModel, ActiveModelUnreadable
from training_jobs.columns import StrArray, iso_ms
from training_jobs.errors import DatasetError
from training_jobs.gate_holdout import GateHoldout, TimeSplit, build_holdout, judged_from
from training_jobs.gate_scoring import ServedModel, popularity_on_holdout

GATE_METRIC = "ndcg_10"


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate should replace the active model, and why."""

    promote: bool
    reason: str


def decide(
    candidate: dict[str, float],
    popularity: dict[str, float],
    *,
    active: dict[str, float] | None,
    active_version: str | None,
    quality_floor: float,
    metric: str = GATE_METRIC,
) -> GateDecision:
    """The gate's rule (module docstring); every number compared is on the same judged holdout."""
    score, floor_score = candidate[metric], popularity[metric]
    label = f"gate NDCG@10 {score:.4f}"
    if score <= floor_score:
        return GateDecision(False, f"{label} does not beat popularity's {floor_score:.4f}")
    if score < quality_floor:
        return GateDecision(False, f"{label} is below the quality floor {quality_floor:.4f}")
    if active is not None:
        if score <= active[metric]:
            return GateDecision(
                False, f"{label} does not beat the active {active_version}'s {active[metric]:.4f}"
            )
        return GateDecision(
            True,
            f"{label} beats the active {active_version}'s {active[metric]:.4f} and popularity's "
            f"{floor_score:.4f} on the same holdout",
        )
    return GateDecision(True, f"{label} beats popularity's {floor_score:.4f} (no active model to beat)")


@dataclass(frozen=True)
class ActiveRecord:
    """What the gate records of the active model: its numbers, or why it could not be read."""

    version: str | None
    trained_until_ms: int | None = None
    metrics: dict[str, float] | None = None
    """``None`` when it was read but not measured (no interaction newer than its data)."""
    error: str | None = None

    def to_manifest(self) -> dict[str, Any]:
        """The ``active`` object of the manifest's ``gate`` section."""
        if self.error is not None:
            return {"version": self.version, "error": self.error}
        end = self.trained_until_ms
        return {
            "version": self.version,
            "trained_until": iso_ms(end) if end is not None else None,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class GateReport:
    """The gate's numbers and verdict; ``document`` is the manifest's ``gate`` section."""

    decision: GateDecision
    candidate: dict[str, float]
    popularity: dict[str, float]
    active: dict[str, float] | None
    holdout: GateHoldout
    document: dict[str, Any]


def _judged_holdout(
    interactions: pa.Table,
    catalogue_ids: StrArray,
    split: TimeSplit,
    active: ActiveModel | None,
    max_users: int | None,
    seed: int,
) -> tuple[GateHoldout, bool]:
    """The judged holdout, and whether it is the whole gate holdout because none is newer than the active.

    With nothing newer than the active model's data, the others are measured on the whole gate holdout.
    """
    active_end = active.trained_until_ms if active is not None else None
    start = split.gate_start_ms

    def holdout_from(judged_from_ms: int) -> GateHoldout:
        return build_holdout(
            interactions, catalogue_ids, start, judged_from_ms, max_users=max_users, seed=seed
        )

    holdout = holdout_from(judged_from(start, active_end))
    stale_active = active is not None and holdout.n_users == 0
    if stale_active:
        holdout = holdout_from(start)
    if holdout.n_users == 0:
        raise DatasetError(
            f"too little history to judge the model: no user with interactions before "
            f"{iso_ms(start)} has a new item at or after it (the gate holdout, the newest "
            f"{split.gate_events} interactions); upload more history or change config.gate_fraction"
        )
    return holdout, stale_active


def _gate_document(
    decision: GateDecision,
    split: TimeSplit,
    holdout: GateHoldout,
    candidate: dict[str, float],
    popularity: dict[str, float],
    active: ActiveRecord | None,
    quality_floor: float,
) -> dict[str, Any]:
    """The manifest's ``gate`` section."""
    return {
        "metric": GATE_METRIC,
        "promote": decision.promote,
        "reason": decision.reason,
        "split": split.describe(),
        "holdout": holdout.describe(),
        "leak_guard": (
            "only interactions newer than the active model's data judge it (judged_from = "
            "max(gate_start, active data end + 1 ms))"
        ),
        "candidate": {"metrics": candidate},
        "active": active.to_manifest() if active is not None else None,
        "popularity": {"metrics": popularity},
        "quality_floor": quality_floor,
        "published": "refit on every interaction of the window with the settings the selection split chose",
    }


def judge(
    *,
    interactions: pa.Table,
    catalogue_ids: StrArray,
    split: TimeSplit,
    candidate: ServedModel,
    active: ActiveModel | ActiveModelUnreadable | None,
    active_version: str | None,
    quality_floor: float,
    max_users: int | None = None,
    seed: int = 0,
) -> GateReport:
    """Measure the candidate, the active model and popularity on one judged holdout and decide (on a
    seeded sample of at most ``max_users`` of its users, the same for every contender)."""
    readable = active if isinstance(active, ActiveModel) else None
    holdout, stale_active = _judged_holdout(interactions, catalogue_ids, split, readable, max_users, seed)
    candidate_metrics = candidate.metrics(holdout)
    popularity = popularity_on_holdout(interactions, catalogue_ids, holdout)
    active_metrics = readable.model.metrics(holdout) if readable is not None and not stale_active else None
    record: ActiveRecord | None = None
    if readable is not None:
        end = readable.trained_until_ms
        decision = decide(
            candidate_metrics,
            popularity,
            active=active_metrics,
            active_version=readable.version,
            quality_floor=quality_floor,
        )
        if stale_active:
            decision = GateDecision(
                False,
                f"no interaction after the active {readable.version}'s data (which ends "
                f"{iso_ms(end) if end is not None else 'at an unknown time'}) can judge it fairly, so it "
                "stays; train again once newer interactions arrive",
            )
        record = ActiveRecord(readable.version, end, active_metrics)
    else:
        decision = decide(
            candidate_metrics, popularity, active=None, active_version=None, quality_floor=quality_floor
        )
        if isinstance(active, ActiveModelUnreadable):
            decision = GateDecision(
                decision.promote,
                f"{decision.reason}; the active {active_version} could not be read and was not "
                f"compared ({active})",
            )
            record = ActiveRecord(active_version, error=str(active)[:500])
    document = _gate_document(decision, split, holdout, candidate_metrics, popularity, record, quality_floor)
    return GateReport(decision, candidate_metrics, popularity, active_metrics, holdout, document)
