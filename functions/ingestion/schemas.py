"""Request and response models of the ingestion routes: validation reports and upload tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from functions.common.request_models import StrictRequestModel


class RowIssueOut(BaseModel):
    """One problem with one row (row 0: the upload as a whole)."""

    row: int
    field: str
    message: str


class IngestReportOut(BaseModel):
    """The validation report of an upload. ``accepted + rejected + duplicates`` = rows received.

    ``duplicates``: events whose ``event_id`` an earlier upload already stored (a replay is not stored
    or counted as accepted again).
    """

    status: Literal["success", "partial", "failed", "pending"] = Field(
        description="pending: an upload URL was handed out and its file is not ingested yet"
    )
    accepted: int
    rejected: int
    validation_errors: list[RowIssueOut]
    warnings: list[RowIssueOut] = []
    duplicates: int = 0
    upload_id: str
    kind: Literal["items", "interactions"]
    source: str
    received_at: datetime


class UploadRequest(StrictRequestModel):
    """``POST /api/v1/uploads``: ask for a presigned URL to upload a large CSV."""

    kind: Literal["items", "interactions"]


class UploadTicket(BaseModel):
    """Where and how to PUT the file; the report appears at ``GET /api/v1/uploads/{upload_id}``."""

    upload_id: str
    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str]
    key: str
    expires_in: int
