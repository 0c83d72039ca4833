"""The popular-items document, ``popular.json``: written by ingestion (``catalog/{tenant}/popular.json``)
and by the training job (in each model version), read by serving.

``{"overall": [entry, ...], "by_category": {category: [entry, ...]}}``, each list best first; an entry
carries what serving shows, so serving needs nothing else to answer: ``item_id``, ``score`` (a share of
the most popular item's weighted interaction count, in [0, 1]), ``title``, ``category``, ``brand`` and
``price`` (null when unknown).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: At most this many entries per list.
POPULAR_LIMIT = 200


class PopularEntry(BaseModel):
    """One item of a popular list."""

    model_config = ConfigDict(frozen=True)

    item_id: Annotated[str, Field(min_length=1)]
    score: float = 0.0
    title: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, data: Any) -> Any:
        """Readers take what older writers wrote: ids as text, a missing title as the id, no bad price."""
        if not isinstance(data, dict) or not data.get("item_id"):
            return data
        item_id = str(data["item_id"])
        price = data.get("price")
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
            price = None
        return {
            "item_id": item_id,
            "score": data.get("score", 0.0),
            "title": str(data.get("title") or item_id),
            "category": str(data.get("category") or ""),
            "brand": str(data.get("brand") or ""),
            "price": None if price is None else float(price),
        }


class PopularDocument(BaseModel):
    """The whole document."""

    model_config = ConfigDict(frozen=True)

    overall: list[PopularEntry] = Field(default_factory=list)
    by_category: dict[str, list[PopularEntry]] = Field(default_factory=dict)

    @field_validator("by_category", mode="before")
    @classmethod
    def _category_names_as_text(cls, value: Any) -> Any:
        return {str(name): entries for name, entries in value.items()} if isinstance(value, dict) else value

    def document(self) -> dict[str, Any]:
        """The JSON-ready document, as written."""
        return self.model_dump(mode="python")
