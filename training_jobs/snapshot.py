"""From a tenant's dataset snapshot (raw Parquet schema) to index-space training data.

Rules (each failure raises :class:`DatasetError` with a message for the job record):
- interactions with a null user/item id are dropped; those whose item is not in the catalogue are
  dropped and counted; catalogue items with no interaction are left out of the model and the index
  (counted as ``items_without_interactions``) because their vectors would be untrained noise;
- a (user, item) pair's weight is the largest interaction-type weight among its events
  (purchase > add_to_cart > click > view), or 1 when weighting is off; with ``recency_half_life_days``
  each event's weight is first multiplied by ``0.5 ** (age_days / half_life)``, age counted back from the
  newest event in the snapshot;
- validation split: the snapshot's boolean ``is_validation`` column when present; otherwise, per user with
  at least ``min_events_for_validation`` events, the last ``ceil(validation_fraction * events)`` events by
  timestamp (ties broken by row order) are held out. Held-out pairs that also occur in the user's
  training part are not evaluated (they are masked as training items);
- users and items are indexed in sorted order of their string ids.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract.interactions import INTERACTION_TYPES
from contract.layout import SNAPSHOT_INTERACTIONS, SNAPSHOT_ITEMS, WINDOW_METADATA_KEY
from training_jobs.columns import codes_in, compact_codes, millis, sorted_distinct, with_ids
from training_jobs.config import TrainingConfig
from training_jobs.data import FloatArray, IntArray, InteractionGraph, build_graph
from training_jobs.errors import DatasetError

StrArray = npt.NDArray[np.str_]
Codes = npt.NDArray[np.int32] | npt.NDArray[np.int64]
"""Dense index codes (int32 per event, int64 per pair)."""
REQUIRED_INTERACTION_COLUMNS = ("user_id", "item_id", "interaction_type", "timestamp")
REQUIRED_ITEM_COLUMNS = ("item_id",)


@dataclass(frozen=True)
class Catalogue:
    """Item metadata in item-index order (only the items the model knows)."""

    item_ids: StrArray
    titles: StrArray
    categories: StrArray
    brands: StrArray
    prices: npt.NDArray[np.float64]


@dataclass(frozen=True)
class PreparedData:
    """Everything the trainer and exporter need from one snapshot."""

    train: InteractionGraph
    val_users: IntArray
    val_items: IntArray
    user_ids: StrArray
    catalogue: Catalogue
    item_popularity: FloatArray
    """Weighted interaction count per item over the whole snapshot (for ``popular.json``)."""
    stats: dict[str, int]
    data_window: dict[str, Any]
    history: UserHistories


@dataclass(frozen=True)
class UserHistories:
    """Each user's interacted items (CSR, most recent first, one entry per item with its strongest type)."""

    indptr: IntArray
    items: npt.NDArray[np.int32]
    types: npt.NDArray[np.int8]
    """0 view, 1 click, 2 add_to_cart, 3 purchase."""


def user_histories(
    users: Codes,
    items: Codes,
    type_codes: npt.NDArray[np.int8],
    timestamps: npt.NDArray[np.int64],
    n_users: int,
    n_items: int,
    max_items: int = 50,
) -> UserHistories:
    """Deduplicate (user, item) events (latest time, strongest type) and keep the ``max_items`` latest."""
    if users.size == 0:
        return UserHistories(np.zeros(n_users + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8))
    keys = users.astype(np.int64) * n_items + items
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    pair_keys = sorted_keys[starts]
    latest = np.maximum.reduceat(timestamps[order], starts)
    strongest = np.maximum.reduceat(type_codes[order], starts)
    pair_users, pair_items = pair_keys // n_items, pair_keys % n_items
    recent_first = np.lexsort((pair_items, -latest, pair_users))
    pair_users, pair_items, strongest = (
        pair_users[recent_first],
        pair_items[recent_first],
        strongest[recent_first],
    )
    counts = np.bincount(pair_users, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keep = (np.arange(pair_users.size) - first[pair_users]) < max_items
    kept_counts = np.bincount(pair_users[keep], minlength=n_users)
    return UserHistories(
        indptr=np.concatenate([[0], np.cumsum(kept_counts)]).astype(np.int64),
        items=pair_items[keep].astype(np.int32),
        types=strongest[keep].astype(np.int8),
    )


def snapshot_window(interactions: pa.Table) -> dict[str, Any]:
    """``{"window": ...}``: the window PrepareDataset chose (start, end, days, anchor), when it says."""
    raw = (interactions.schema.metadata or {}).get(WINDOW_METADATA_KEY)
    return {"window": json.loads(raw)} if raw else {}


def read_parquet(data: bytes, name: str) -> pa.Table:
    """Parse Parquet bytes, turning decoder errors into a :class:`DatasetError`."""
    try:
        return pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"{name} is not a readable Parquet file: {exc}") from exc


def _require_columns(table: pa.Table, columns: tuple[str, ...], name: str) -> None:
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise DatasetError(f"{name} lacks required column(s): {', '.join(missing)}")


def _strings(table: pa.Table, column: str) -> StrArray:
    if column not in table.column_names:
        return np.full(table.num_rows, "", dtype=str)
    values = pc.fill_null(pc.cast(table[column], pa.string()), "")
    return np.asarray(values.to_pylist(), dtype=str)


def _iso_ms(timestamps: npt.NDArray[np.int64], pick: Any) -> str | None:
    """ISO time of ``pick`` (min/max) over the known (non-zero) millisecond timestamps."""
    known = timestamps[timestamps > 0]
    return _iso(datetime.fromtimestamp(int(pick(known)) / 1000, UTC)) if known.size else None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def _validation_mask(
    users: Codes, timestamps: npt.NDArray[np.int64], n_users: int, config: TrainingConfig
) -> npt.NDArray[np.bool_]:
    """Per-user time-based hold-out of the last ``ceil(fraction * events)`` events."""
    n = users.size
    order = np.lexsort((np.arange(n), timestamps, users))
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[users[order]]
    n_hold = np.where(
        counts >= config.min_events_for_validation,
        np.ceil(counts * config.validation_fraction),
        0,
    ).astype(np.int64)
    hold_sorted = rank >= (counts - n_hold)[users[order]]
    mask = np.zeros(n, dtype=bool)
    mask[order] = hold_sorted
    return mask


def _catalogue(
    items: pa.Table, valid: npt.NDArray[np.bool_], rows: IntArray, model_items: StrArray
) -> Catalogue:
    """Metadata of the model's items (``rows`` index the valid catalogue rows)."""
    table = items.filter(pa.array(valid)).take(pa.array(rows))
    if "price" in table.column_names:
        prices = pc.fill_null(pc.cast(table["price"], pa.float64()), math.nan).to_numpy(zero_copy_only=False)
    else:
        prices = np.full(model_items.size, math.nan)
    return Catalogue(
        item_ids=model_items.astype(str),
        titles=_strings(table, "title"),
        categories=_strings(table, "category"),
        brands=_strings(table, "brand"),
        prices=np.asarray(prices, dtype=np.float64),
    )


def _interaction_weights(type_codes: npt.NDArray[np.int8], config: TrainingConfig) -> FloatArray:
    """Each event's interaction-type weight (``type_codes`` index ``INTERACTION_TYPES``)."""
    weight_of = (
        config.interaction_weights
        if config.use_interaction_weights
        else dict.fromkeys(INTERACTION_TYPES, 1.0)
    )
    by_code = np.array([weight_of[name] for name in INTERACTION_TYPES], dtype=np.float32)
    weights: FloatArray = by_code[type_codes]
    return weights


def recency_decay(timestamps_ms: npt.NDArray[np.int64], half_life_days: float | None) -> FloatArray:
    """``0.5 ** (age / half_life)`` per event, age in days before the newest event (1 when off)."""
    if half_life_days is None or timestamps_ms.size == 0:
        return np.ones(timestamps_ms.size, dtype=np.float32)
    age_days = (timestamps_ms.max() - timestamps_ms).astype(np.float64) / 86_400_000.0
    decay: FloatArray = np.power(0.5, age_days / half_life_days).astype(np.float32)
    return decay


def prepare_data(
    interactions: pa.Table, items: pa.Table, config: TrainingConfig, *, require_validation: bool = True
) -> PreparedData:
    """Validate the snapshot and build index-space training/validation data (see module docstring).

    ``require_validation=False`` accepts a snapshot whose ``is_validation`` holds nothing out (the
    published model's refit on the whole window).
    """
    _require_columns(interactions, REQUIRED_INTERACTION_COLUMNS, SNAPSHOT_INTERACTIONS)
    _require_columns(items, REQUIRED_ITEM_COLUMNS, SNAPSHOT_ITEMS)
    if interactions.num_rows == 0:
        raise DatasetError("dataset snapshot has no interactions")
    if items.num_rows == 0:
        raise DatasetError("dataset snapshot has no items in items.parquet")

    interactions = with_ids(interactions)
    # Every per-row column becomes a number here (int32 codes, int8 types, float32 weights) straight
    # from Arrow: no Python object or fixed-width string per row.
    type_codes_all = codes_in(interactions["interaction_type"], pa.array(INTERACTION_TYPES)).astype(np.int8)
    if (type_codes_all < 0).any():
        strange = pc.unique(interactions["interaction_type"].filter(pa.array(type_codes_all < 0)))
        unknown = sorted({str(value) for value in strange.to_pylist()})
        raise DatasetError(f"unknown interaction_type value(s): {', '.join(unknown[:5])}")
    if config.require_non_view and (type_codes_all == INTERACTION_TYPES.index("view")).all():
        raise DatasetError(
            "every interaction is a 'view'; at least one click, add_to_cart or purchase is needed "
            "(set require_non_view=false to train on views alone)"
        )

    catalogue_column = pc.cast(items["item_id"], pa.string())
    valid_catalogue = np.asarray(pc.is_valid(catalogue_column).to_numpy(zero_copy_only=False), dtype=bool)
    unique_catalogue = sorted_distinct(catalogue_column)
    _, first_row = np.unique(
        codes_in(catalogue_column.filter(pa.array(valid_catalogue)), unique_catalogue), return_index=True
    )

    catalogue_codes = codes_in(interactions["item_id"], unique_catalogue)
    in_catalogue = catalogue_codes >= 0
    dropped_unknown_items = int((~in_catalogue).sum())
    if not in_catalogue.any():
        raise DatasetError(
            "no interaction refers to an item in items.parquet (every catalogue item has no interactions)"
        )
    keep = in_catalogue
    distinct_users = sorted_distinct(interactions["user_id"])
    user_codes = codes_in(interactions["user_id"], distinct_users)[keep]
    type_codes = type_codes_all[keep]
    del type_codes_all
    timestamps = millis(interactions)[keep]
    weights = _interaction_weights(type_codes, config) * recency_decay(
        timestamps, config.recency_half_life_days
    )
    user_index, _, user_ids = compact_codes(user_codes, distinct_users)
    item_index, item_catalogue_codes, model_items = compact_codes(catalogue_codes[keep], unique_catalogue)
    del user_codes, catalogue_codes
    n_users, n_items = user_ids.size, model_items.size
    if n_users < 2:
        raise DatasetError(f"dataset has {n_users} user with interactions; at least 2 users are needed")
    if n_items < 2:
        raise DatasetError(f"dataset has {n_items} item with interactions; at least 2 items are needed")

    if "is_validation" in interactions.column_names:
        flags = pc.fill_null(pc.cast(interactions["is_validation"], pa.bool_()), False)
        is_val = np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool)[keep]
        split_rule = "is_validation column"
    else:
        is_val = _validation_mask(user_index, timestamps, n_users, config)
        split_rule = (
            f"last ceil({config.validation_fraction} x events) per user with >= "
            f"{config.min_events_for_validation} events"
        )
    train_rows = ~is_val
    if not train_rows.any():
        raise DatasetError("the validation split holds every interaction; nothing is left to train on")
    train = build_graph(user_index[train_rows], item_index[train_rows], n_users, n_items, weights[train_rows])
    train_users_present = np.bincount(train.users, minlength=n_users) > 0
    val_rows = is_val & train_users_present[user_index]
    val_users = user_index[val_rows].astype(np.int64)
    val_items = item_index[val_rows].astype(np.int64)
    train_keys = train.users * n_items + train.items
    fresh = ~np.isin(val_users * n_items + val_items, train_keys)
    if require_validation and not fresh.any():
        raise DatasetError(
            "not enough history for a validation split: no user has a held-out item that is not "
            f"already in their training interactions (rule: {split_rule})"
        )
    if int(train_users_present.sum()) < 2:
        raise DatasetError("fewer than 2 users have training interactions after the validation split")

    rows = first_row[item_catalogue_codes]
    catalogue = _catalogue(items, valid_catalogue, rows, model_items)
    popularity = np.bincount(item_index, weights=weights, minlength=n_items).astype(np.float32)
    data_window = {
        "start": _iso_ms(timestamps, np.min),
        "end": _iso_ms(timestamps, np.max),
        "validation_start": _iso_ms(timestamps[val_rows], np.min),
        "split_rule": split_rule,
        **snapshot_window(interactions),
    }
    stats = {
        "interactions": int(interactions.num_rows),
        "interactions_used": int(keep.sum()),
        "interactions_unknown_item": dropped_unknown_items,
        "users": int(n_users),
        "items": int(n_items),
        "catalogue_items": len(unique_catalogue),
        "items_without_interactions": len(unique_catalogue) - int(n_items),
        "train_pairs": int(train.n_edges),
        "validation_pairs": int(fresh.sum()),
        "validation_users": int(np.unique(val_users[fresh]).size),
    }
    return PreparedData(
        train=train,
        val_users=val_users,
        val_items=val_items,
        user_ids=user_ids,
        catalogue=catalogue,
        item_popularity=popularity,
        stats=stats,
        data_window=data_window,
        history=user_histories(user_index, item_index, type_codes, timestamps, n_users, n_items),
    )
