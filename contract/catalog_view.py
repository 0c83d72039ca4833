"""The serving view of a tenant's current catalogue: ``catalog/{tenant}/serving.json.gz`` (docs/artifacts.md).

Ingestion keeps the catalogue as Parquet, which serving cannot read (its layer has no pyarrow). So
every change of the catalogue or of the item counts also rewrites this small gzip'd JSON document,
column by column: serving re-reads it only when its ETag changed and judges every answer (filters,
titles, prices, availability, new items) by it. Writer and reader share this one definition.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from contract.layout import catalog_view_key

__all__ = ["COLUMNS", "FORMAT", "CatalogColumns", "catalog_view_key", "decode", "encode"]

FORMAT: Final = 1
#: Columns of the document, each a list with one entry per catalogue item (in catalogue order).
COLUMNS: Final = ("item_id", "title", "category", "brand", "price", "available", "popularity")


@dataclass(frozen=True)
class CatalogColumns:
    """The document's content: equal-length columns (``price`` None when unknown)."""

    item_id: Sequence[str]
    title: Sequence[str]
    category: Sequence[str]
    brand: Sequence[str]
    price: Sequence[float | None]
    available: Sequence[bool]
    popularity: Sequence[float]  # weighted interaction count, 0 for items nobody interacted with

    def __post_init__(self) -> None:
        sizes = {name: len(getattr(self, name)) for name in COLUMNS}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"catalogue view columns differ in length: {sizes}")

    def __len__(self) -> int:
        return len(self.item_id)


def encode(columns: CatalogColumns) -> bytes:
    """The gzip'd JSON document (non-finite prices become null)."""
    document = {
        "format": FORMAT,
        **{name: list(getattr(columns, name)) for name in COLUMNS if name != "price"},
        "price": [p if p is not None and math.isfinite(p) else None for p in columns.price],
    }
    # mtime=0: the same catalogue always gives the same bytes (and the same ETag); level 1: a tenth of
    # the default level's time for a slightly larger object.
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), compresslevel=1, mtime=0)


def decode(data: bytes) -> CatalogColumns:
    """Parse a document; ``ValueError`` if it is not one of this format."""
    try:
        document: Any = json.loads(gzip.decompress(data))
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a catalogue view: {exc}") from exc
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise ValueError("not a catalogue view of format 1")
    if not all(isinstance(document.get(name), list) for name in COLUMNS):
        raise ValueError(f"a catalogue view needs the list columns {', '.join(COLUMNS)}")
    # Text columns stay as parsed: the writer only writes strings, and readers convert whole columns
    # at once (a per-value check here cost a third of the parse at 100k items).
    return CatalogColumns(
        item_id=document["item_id"],
        title=document["title"],
        category=document["category"],
        brand=document["brand"],
        price=[_number(v) for v in document["price"]],
        available=[v is not False for v in document["available"]],
        popularity=[_number(v) or 0.0 for v in document["popularity"]],
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
