"""Ranking, filtering and explanation with a loaded model (no HTTP, no AWS).

- A user's vector comes from the user tower: the trained vector of a known user, with the events that
  arrived after training folded in (weighted by type, ``contract.interactions``, and by recency); a user
  the model has not seen but who has recent events gets a vector from those events alone.
- Candidates come from the filtered index search (``functions.serving.search``) under the bundle's
  bitmap of the declared filters (``functions.serving.filters``), so every item passes every filter
  and ``count`` items come back whenever that many pass.
- Each item's reason names the user's history item nearest to it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from contract.interactions import INTERACTION_TYPES, PURCHASE, PURCHASE_CODE, weight_of
from functions.common.errors import NotFoundError
from functions.serving.bundle import ModelBundle
from functions.serving.domain import (
    POPULAR,
    Ranking,
    RecommendationQuery,
    ScoredItem,
    UserEvent,
)
from functions.serving.filters import ItemFilters
from functions.serving.popular import popular_reason
from functions.serving.search import AllowedSet, SearchResult

_SCORE_DIGITS = 4


def fold_in_weights(
    events: Sequence[UserEvent], now: datetime, half_life_hours: float
) -> npt.NDArray[np.float32]:
    """Each event's weight: its type's weight halved every ``half_life_hours`` of age, normalised to sum 1.

    Normalising keeps the folded-in part on the scale of one item vector however many events there are,
    so a trained user's own vector is moved, not drowned.
    """
    if not events:
        return np.empty(0, np.float32)
    half_life_s = half_life_hours * 3600.0
    raw = np.array(
        [
            weight_of(event.interaction_type)
            * 0.5 ** (max(0.0, (now - event.timestamp).total_seconds()) / half_life_s)
            for event in events
        ],
        dtype=np.float64,
    )
    total = raw.sum()
    if total <= 0:
        raw = np.ones(len(events))
        total = float(len(events))
    weights: npt.NDArray[np.float32] = (raw / total).astype(np.float32)
    return weights


@dataclass(frozen=True)
class UserContext:
    """What the model knows about one user for one request."""

    user_index: int  # -1: not in the training data
    fold_items: npt.NDArray[np.int64]  # events after training, as item indices
    fold_weights: npt.NDArray[np.float32]
    history_items: npt.NDArray[np.int64]  # recent events, then training history: newest first
    history_types: tuple[str, ...]
    purchased: npt.NDArray[np.int64]

    @property
    def is_cold(self) -> bool:
        """Nothing to personalise with: neither a trained vector nor recent events."""
        return self.user_index < 0 and self.fold_items.size == 0


def user_context(
    bundle: ModelBundle,
    user_id: str,
    events: Sequence[UserEvent],
    now: datetime,
    half_life_hours: float,
    *,
    erased: bool = False,
) -> UserContext:
    """The user's index, fold-in events, history and purchases under ``bundle``.

    An erased user is a stranger to every version: neither their trained vector nor their training
    history is used (so no reason names an item of it); only events sent since the erasure count.
    """
    user_index = -1 if erased else bundle.users.user_index(user_id)
    event_items = bundle.catalog.lookup([event.item_id for event in events])
    known = [(event, int(index)) for event, index in zip(events, event_items, strict=True) if index >= 0]
    # A trained user's older events are already in the model; a user it has never seen folds in all.
    cutoff = bundle.trained_until if user_index >= 0 else None
    fresh = [(event, index) for event, index in known if cutoff is None or event.timestamp > cutoff]
    fold_items = np.array([index for _event, index in fresh], dtype=np.int64)
    fold_weights = fold_in_weights([event for event, _index in fresh], now, half_life_hours)
    trained_items, trained_codes = bundle.users.history(user_index)
    history_items = np.concatenate(
        [np.array([index for _event, index in known], dtype=np.int64), trained_items]
    )
    history_types = tuple(event.interaction_type for event, _index in known) + tuple(
        INTERACTION_TYPES[code] if 0 <= code < len(INTERACTION_TYPES) else "view"
        for code in trained_codes.tolist()
    )
    purchased = np.concatenate(
        [
            np.array([index for event, index in known if event.interaction_type == PURCHASE], dtype=np.int64),
            trained_items[trained_codes == PURCHASE_CODE],
        ]
    )
    return UserContext(
        user_index, fold_items, fold_weights, history_items, history_types, np.unique(purchased)
    )


def rank_for_user(
    bundle: ModelBundle,
    query: RecommendationQuery,
    events: Sequence[UserEvent],
    *,
    now: datetime,
    half_life_hours: float,
    erased: bool = False,
) -> Ranking:
    """The user's top ``query.count`` items under the filters (popular items for a cold user)."""
    context = user_context(bundle, query.user_id, events, now, half_life_hours, erased=erased)
    purchased = context.purchased if query.exclude_purchased else ()
    allowed = bundle.allowed(query.filters, without=purchased)
    if context.is_cold:
        return rank_popular_with_model(bundle, query.filters, allowed, query.count)
    vector = bundle.tower.user_vector(context.user_index, context.fold_items, context.fold_weights)
    started = time.perf_counter()
    result = bundle.search.search(vector, allowed, query.count)
    search_ms = (time.perf_counter() - started) * 1000
    reasons = explain(bundle, result.indices, context)
    return Ranking(_scored(bundle, result, reasons), algorithm=bundle.model_type, search_ms=search_ms)


def rank_popular_with_model(
    bundle: ModelBundle, filters: ItemFilters, allowed: AllowedSet, count: int
) -> Ranking:
    """Popular items that pass ``allowed``; topped up, if the lists run short, by the allowed items
    nearest to the popular items' centroid (so a filtered cold request still gets ``count`` items)."""
    catalog = bundle.catalog
    entries = bundle.popular.candidates(filters.categories)
    indices = catalog.lookup([entry.item_id for entry in entries])
    passing = allowed.contains(indices)
    items: list[ScoredItem] = []
    chosen: list[int] = []
    for entry, index, ok in zip(entries, indices.tolist(), passing.tolist(), strict=True):
        if len(items) >= count:
            break
        if not ok:
            continue
        chosen.append(index)
        category = str(catalog.categories[index])
        items.append(_item(bundle, index, entry.score, popular_reason(category)))
    search_ms = 0.0
    if len(items) < count:
        started = time.perf_counter()
        rest = bundle.search.search(bundle.popular_centroid, allowed.without(chosen), count - len(items))
        search_ms = (time.perf_counter() - started) * 1000
        for index in rest.indices.tolist():
            category = str(catalog.categories[index])
            # Not in a popularity list: ranked below every listed item, in centroid order.
            items.append(_item(bundle, index, 0.0, f"Similar to bestsellers in {category}"))
    items.sort(key=lambda item: item.score, reverse=True)  # stable: lists are best first already
    return Ranking(tuple(items), algorithm=POPULAR, search_ms=search_ms)


def rank_similar(bundle: ModelBundle, item_id: str, count: int) -> Ranking:
    """Items nearest to ``item_id`` in the index (never the item itself); ``NotFoundError`` if unknown."""
    index = bundle.catalog.index_of(item_id)
    if index < 0:
        raise NotFoundError(f"item '{item_id}' is not in the active model")
    allowed = bundle.allowed(ItemFilters(), without=[index])
    vector = np.asarray(bundle.search.vectors[index], dtype=np.float32)
    started = time.perf_counter()
    result = bundle.search.search(vector, allowed, count)
    search_ms = (time.perf_counter() - started) * 1000
    reason = f"Customers who bought {bundle.catalog.titles[index]} also bought this"
    return Ranking(_scored(bundle, result, [reason] * result.indices.size), bundle.model_type, search_ms)


def explain(bundle: ModelBundle, indices: npt.NDArray[np.int64], context: UserContext) -> list[str]:
    """For each recommended item, the reason naming the user's history item nearest to it."""
    if indices.size == 0:
        return []
    if context.history_items.size == 0:
        return ["Recommended for you"] * int(indices.size)
    vectors = bundle.search.vectors
    similarity = np.asarray(vectors[indices]) @ np.asarray(vectors[context.history_items]).T
    # An item is never its own reason: "because you viewed X" under X itself says nothing.
    itself = indices[:, None] == context.history_items[None, :]
    similarity = np.where(itself, -np.inf, similarity)
    anchors = similarity.argmax(axis=1)  # ties go to the newest history item
    titles = bundle.catalog.titles
    reasons = []
    for row, anchor in enumerate(anchors.tolist()):
        if itself[row].all():
            reasons.append(_again(context.history_types[anchor]))
        else:
            reasons.append(
                _because(context.history_types[anchor], str(titles[context.history_items[anchor]]))
            )
    return reasons


def _again(interaction_type: str) -> str:
    if interaction_type == PURCHASE:
        return "You bought this before"
    if interaction_type == "add_to_cart":
        return "Still in your cart"
    return "You viewed this recently"


def _because(interaction_type: str, title: str) -> str:
    if interaction_type == PURCHASE:
        return f"Because you bought {title}"
    if interaction_type == "add_to_cart":
        return f"Because you added {title} to your cart"
    return f"Because you viewed {title}"


def _scored(bundle: ModelBundle, result: SearchResult, reasons: Sequence[str]) -> tuple[ScoredItem, ...]:
    return tuple(
        _item(bundle, index, score, reason)
        for index, score, reason in zip(result.indices.tolist(), result.scores.tolist(), reasons, strict=True)
    )


def _item(bundle: ModelBundle, index: int, score: float, reason: str) -> ScoredItem:
    catalog = bundle.catalog
    return ScoredItem(
        item_id=str(catalog.item_ids[index]),
        title=str(catalog.titles[index]),
        score=round(float(score), _SCORE_DIGITS),
        category=str(catalog.categories[index]),
        price=catalog.price(index),
        reason=reason,
    )
