"""The base of every request body model: JSON booleans are never numbers.

Pydantic's lax mode reads ``true`` as ``1`` for an ``int`` or ``float`` field, so ``"count": true``
would pass as one item and ``"traffic": true`` as one percent. Every request model of both apps
derives from :class:`RequestModel`, which refuses a boolean wherever a number is declared.
"""

from __future__ import annotations

import functools
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class RequestModel(BaseModel):
    """A request body: a boolean given for a numeric field is a 422, not 0 or 1."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in _numeric_fields(cls):
            raise ValueError("must be a number, not a boolean")
        return value


class StrictRequestModel(RequestModel):
    """A request body that refuses unknown fields and strips the whitespace around text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@functools.cache
def _numeric_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields whose type admits a number and not a boolean (computed once per model class)."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if _admits_number(info.annotation) and not _admits(info.annotation, bool)
    )


def _flatten(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _flatten(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [leaf for arg in get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]


def _admits_number(annotation: Any) -> bool:
    return any(leaf in (int, float) for leaf in _flatten(annotation))


def _admits(annotation: Any, kind: type) -> bool:
    return any(leaf is kind for leaf in _flatten(annotation))
