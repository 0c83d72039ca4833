"""Interaction types, their codes in ``lookup.npz`` and their weights."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

InteractionType = Literal["view", "click", "add_to_cart", "purchase"]
#: The funnel's steps in order; a type's position is its code (``lookup.npz``'s ``history_types``).
INTERACTION_TYPES: Final[tuple[InteractionType, ...]] = ("view", "click", "add_to_cart", "purchase")
INTERACTION_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {name: code for code, name in enumerate(INTERACTION_TYPES)}
)
PURCHASE: Final[InteractionType] = "purchase"
PURCHASE_CODE: Final = INTERACTION_CODES[PURCHASE]

#: How much one event of each type says about a shopper's interest in the item: the trainer's default
#: edge weights, serving's fold-in weights (before recency decay) and ingestion's popularity counts.
INTERACTION_WEIGHTS: Final[Mapping[InteractionType, float]] = MappingProxyType(
    {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 4.0}
)
#: ``INTERACTION_WEIGHTS`` by code (index = code).
WEIGHTS_BY_CODE: Final[tuple[float, ...]] = tuple(INTERACTION_WEIGHTS[name] for name in INTERACTION_TYPES)


def weight_of(interaction_type: str, default: float = 1.0) -> float:
    """The weight of an interaction type given by name (``default`` for a name that is not a type)."""
    return _WEIGHT_BY_NAME.get(interaction_type, default)


_WEIGHT_BY_NAME: dict[str, float] = dict(zip(INTERACTION_TYPES, WEIGHTS_BY_CODE, strict=True))
