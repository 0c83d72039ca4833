"""The gate's data: a 3-way time split of the window and the holdout that judges every contender.

The tenant's window is split by time (milliseconds since the epoch, as in the snapshot):

- **gate holdout**: the newest ``gate_fraction`` of the window's events (every event at or after
  ``gate_start``); it judges the contenders and is never used to choose anything;
- **selection**: the newest ``selection_fraction`` of the events before ``gate_start`` (every event at
  or after ``selection_start``); it picks epochs (and, with several candidate specs, the spec);
- **fit**: everything before ``selection_start``.

Each holdout user keeps its events before ``gate_start`` (the history a contender folds in and masks)
and, as held-out truth, the other items it interacted with in the judged part of the holdout.

Leak guard: the active model saw every event up to the end of its own data. Only events strictly newer
than that may judge it, so the judged holdout starts at ``max(gate_start, active_end + 1 ms)``
(:func:`judged_from`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from contract.interactions import INTERACTION_CODES, INTERACTION_TYPES
from training_jobs.columns import (
    IntArray,
    StrArray,
    codes_in,
    iso_ms,
    millis,
    sample_sorted,
    sorted_distinct,
    with_ids,
)
from training_jobs.errors import DatasetError

TYPE_CODES: dict[str, int] = dict(INTERACTION_CODES)
"""Interaction type codes (0 view, 1 click, 2 add_to_cart, 3 purchase), as serving and lookup.npz."""


def _with_validation_flags(table: pa.Table, flags: npt.NDArray[np.bool_]) -> pa.Table:
    """``table`` with its ``is_validation`` column replaced by ``flags``."""
    if "is_validation" in table.column_names:
        table = table.drop_columns(["is_validation"])
    return table.append_column("is_validation", pa.array(flags))


def _newest_cut(stamps: IntArray, fraction: float) -> int:
    """The time from which ``ceil(fraction * n)`` of the newest events (and any tied with them) lie."""
    ordered = np.sort(stamps)
    n_newest = max(1, math.ceil(fraction * ordered.size))
    return int(ordered[ordered.size - n_newest])


@dataclass(frozen=True)
class TimeSplit:
    """Where the window is cut: fit < ``selection_start`` <= selection < ``gate_start`` <= gate."""

    selection_start_ms: int
    gate_start_ms: int
    fit_events: int
    selection_events: int
    gate_events: int

    def training_window(self, interactions: pa.Table) -> pa.Table:
        """The events before ``gate_start`` with ``is_validation`` marking the selection part.

        A filtered copy of the window, made when asked for (not held by the split): the job drops it once
        the selection data is encoded, so it is never resident beside the gate and the refit.
        """
        stamps = millis(interactions)
        before = stamps < self.gate_start_ms
        training = interactions.filter(pa.array(before))
        return _with_validation_flags(training, stamps[before] >= self.selection_start_ms)

    def describe(self) -> dict[str, Any]:
        """The split as the manifest records it."""
        return {
            "selection_start": iso_ms(self.selection_start_ms),
            "gate_start": iso_ms(self.gate_start_ms),
            "fit_events": self.fit_events,
            "selection_events": self.selection_events,
            "gate_events": self.gate_events,
        }


def time_split(interactions: pa.Table, gate_fraction: float, selection_fraction: float) -> TimeSplit:
    """Cut the window into fit / selection / gate by time (see the module docstring)."""
    stamps = millis(interactions)
    if stamps.size == 0:
        raise DatasetError("dataset snapshot has no interactions")
    gate_start = _newest_cut(stamps, gate_fraction)
    before = stamps < gate_start
    if not before.any():
        raise DatasetError(
            f"every interaction is at or after {iso_ms(gate_start)}: there is no history before the "
            "gate holdout to train on (the window needs interactions at more than one time)"
        )
    selection_start = _newest_cut(stamps[before], selection_fraction)
    fit = stamps < selection_start
    if not fit.any():
        raise DatasetError(
            f"every interaction before the gate holdout ({iso_ms(gate_start)}) is at or after "
            f"{iso_ms(selection_start)}: nothing is left to fit on before the selection split"
        )
    return TimeSplit(
        selection_start_ms=selection_start,
        gate_start_ms=gate_start,
        fit_events=int(fit.sum()),
        selection_events=int(before.sum() - fit.sum()),
        gate_events=int((~before).sum()),
    )


def all_for_refit(interactions: pa.Table) -> pa.Table:
    """The whole window as training data: no event held out (the published model's refit)."""
    return _with_validation_flags(interactions, np.zeros(interactions.num_rows, dtype=bool))


def judged_from(gate_start_ms: int, active_end_ms: int | None) -> int:
    """Leak guard: the first instant whose events may judge the contenders (see the module docstring)."""
    if active_end_ms is None:
        return gate_start_ms
    return max(gate_start_ms, active_end_ms + 1)


@dataclass(frozen=True)
class GateHoldout:
    """The evaluated users: their history before ``gate_start`` and their held-out items (ids)."""

    gate_start_ms: int
    judged_from_ms: int
    user_ids: StrArray
    context_indptr: IntArray
    context_items: StrArray
    """Each user's events before ``gate_start``, newest first."""
    context_types: npt.NDArray[np.int8]
    context_ms: IntArray
    truth_indptr: IntArray
    truth_items: StrArray
    judged_events: int
    eligible_users: int
    """Users with history and new items; more than ``n_users`` when a sample of them is judged."""

    @property
    def n_users(self) -> int:
        """Users with history before the gate and at least one new item in the judged part."""
        return int(self.user_ids.size)

    def describe(self) -> dict[str, Any]:
        """The judged holdout as the manifest records it."""
        return {
            "judged_from": iso_ms(self.judged_from_ms),
            "judged_events": self.judged_events,
            "users": self.n_users,
            "eligible_users": self.eligible_users,
            "held_out_items": int(self.truth_items.size),
        }


def _csr(groups: IntArray, n_groups: int) -> IntArray:
    return np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=n_groups))]).astype(np.int64)


def build_holdout(
    interactions: pa.Table,
    catalogue_ids: StrArray,
    gate_start_ms: int,
    judged_from_ms: int,
    *,
    max_users: int | None = None,
    seed: int = 0,
) -> GateHoldout:
    """The holdout of the window's catalogue events: history before the gate, truth from ``judged_from``.

    With more than ``max_users`` users eligible, a seeded uniform sample of them is judged: every
    contender is scored on the same users, so the comparison stays paired, and the gate's cost is
    bounded however large the tenant (a contender's scores are users x items).
    """
    table = with_ids(interactions)
    catalogue = np.unique(catalogue_ids)
    items = codes_in(table["item_id"], pa.array(catalogue, pa.string()))
    known = items >= 0
    distinct_users = sorted_distinct(table["user_id"])
    users = codes_in(table["user_id"], distinct_users)
    kinds = codes_in(table["interaction_type"], pa.array(INTERACTION_TYPES))
    types = np.where(kinds >= 0, kinds, TYPE_CODES["view"]).astype(np.int8)
    stamps = millis(table)
    users, items, types, stamps = users[known], items[known].astype(np.int64), types[known], stamps[known]
    before = stamps < gate_start_ms
    judged = stamps >= judged_from_ms
    eligible = np.intersect1d(np.unique(users[before]), np.unique(users[judged]))

    # history: events before the gate of eligible users, grouped by user, newest first
    rows = before & np.isin(users, eligible)
    h_user = np.searchsorted(eligible, users[rows])
    order = np.lexsort((-stamps[rows], h_user))
    h_user, h_items = h_user[order], items[rows][order]
    h_types, h_ms = types[rows][order], stamps[rows][order]

    # truth: distinct items of the judged part that the user had not interacted with before the gate
    rows = judged & np.isin(users, eligible)
    n_codes = max(catalogue.size, 1)
    t_keys = np.unique(np.searchsorted(eligible, users[rows]).astype(np.int64) * n_codes + items[rows])
    t_user, t_items = t_keys // n_codes, t_keys % n_codes
    fresh = ~np.isin(t_keys, h_user.astype(np.int64) * n_codes + h_items)
    t_user, t_items = t_user[fresh], t_items[fresh]
    has_truth = np.bincount(t_user, minlength=eligible.size) > 0
    with_truth = int(has_truth.sum())
    keep_user = sample_sorted(np.flatnonzero(has_truth), max_users, seed)
    if keep_user.size < with_truth:
        has_truth = np.zeros(eligible.size, dtype=bool)
        has_truth[keep_user] = True
        sampled = has_truth[t_user]
        t_user, t_items = t_user[sampled], t_items[sampled]
    remap = np.full(eligible.size, -1, dtype=np.int64)
    remap[keep_user] = np.arange(keep_user.size)
    h_keep = has_truth[h_user]
    h_new = remap[h_user[h_keep]]
    t_new = remap[t_user]
    return GateHoldout(
        gate_start_ms=gate_start_ms,
        judged_from_ms=judged_from_ms,
        user_ids=np.asarray(
            distinct_users.take(pa.array(eligible[keep_user])).to_numpy(zero_copy_only=False), dtype=str
        ),
        context_indptr=_csr(h_new, keep_user.size),
        context_items=catalogue[h_items[h_keep]].astype(str),
        context_types=h_types[h_keep],
        context_ms=h_ms[h_keep],
        truth_indptr=_csr(t_new, keep_user.size),
        truth_items=catalogue[t_items].astype(str),
        judged_events=int(judged.sum()),
        eligible_users=with_truth,
    )
