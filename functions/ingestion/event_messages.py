"""Real-time events handed from the api function to the ``compact-events`` function: the message.

``POST /api/v1/interactions`` with JSON events validates them and claims their event ids in the
request, as before, and answers with the same report; the accepted rows then travel as ONE SQS
message per request (``functions.ingestion.compaction``). The consumer writes a whole batch of
messages as one Parquet object and one upload record per tenant, instead of one of each per request.

A message carries its own identity, the request's ``upload_id`` (chosen by the api function, like the
impressions' ``delivery_id``): SQS delivers at least once, and a SendMessage that timed out may have
queued the message all the same, so exactly-once storage is keyed on it, never on SQS's message id.
The rows are an Arrow IPC stream in the stored interactions schema (zstd, base64): no re-validation,
no type drift between the request and the batch object.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Final, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from functions.ingestion.tables import INTERACTIONS_SCHEMA

MESSAGE_VERSION: Literal[1] = 1
#: Compacted batches are upload ids of their own (``events_`` + 24 hex digits of the messages' ids).
BATCH_PREFIX: Final = "events_"
UploadIdText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class EventMessage(BaseModel):
    """One request's accepted events (the body of one SQS message)."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = MESSAGE_VERSION
    upload_id: UploadIdText
    tenant_id: Annotated[str, Field(min_length=1, max_length=128)]
    received_at: datetime
    rows: Annotated[str, Field(min_length=1)]

    @classmethod
    def of_rows(cls, tenant_id: str, upload_id: str, received_at: datetime, table: pa.Table) -> EventMessage:
        """The message carrying ``table`` (interactions schema) for one request."""
        return cls(upload_id=upload_id, tenant_id=tenant_id, received_at=received_at, rows=encode_rows(table))

    def table(self) -> pa.Table:
        """The rows, in the stored interactions schema."""
        return decode_rows(self.rows)


def encode_rows(table: pa.Table) -> str:
    """Rows as base64 text of a zstd-compressed Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, INTERACTIONS_SCHEMA, options=options) as writer:
        writer.write_table(table.cast(INTERACTIONS_SCHEMA))
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def decode_rows(text: str) -> pa.Table:
    """What ``encode_rows`` wrote."""
    with pa.ipc.open_stream(pa.py_buffer(base64.b64decode(text, validate=True))) as reader:
        return reader.read_all().cast(INTERACTIONS_SCHEMA)


def batch_id(upload_ids: Iterable[str]) -> str:
    """The id of the batch holding these requests' rows: the same ids give the same id (and key)."""
    digest = hashlib.sha256("\n".join(sorted(set(upload_ids))).encode()).hexdigest()
    return BATCH_PREFIX + digest[:24]
