"""Catalogue and interaction ingestion: CSV uploads, JSON events, and presigned URLs for large files."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from functions.common.errors import InvalidInputError, PayloadTooLargeError
from functions.common.ids import new_id
from functions.http.dependencies import ClockDep, SettingsDep
from functions.http.principal import Reader, Writer
from functions.ingestion.dependencies import Data, Ingestion, IntakeDep, Uploads
from functions.ingestion.erasure import erase_user
from functions.ingestion.intake import Intake, Payload
from functions.ingestion.schemas import IngestReportOut, UploadRequest, UploadTicket
from functions.ingestion.service import IngestionService, IngestReport
from functions.ingestion.store.data_store import DataStore

router = APIRouter(prefix="/api/v1", tags=["ingestion"])
UploadId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_JSON_RECORDS = 10_000
#: An event has at most 15 keys and a timestamp two colons; 32 per record leaves room for ids with ':'.
MAX_JSON_COLONS = 32 * MAX_JSON_RECORDS

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}, "maxItems": MAX_JSON_RECORDS},
                    ]
                }
            },
        },
    }
}
_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "Nothing accepted: the whole file was unreadable or every row was rejected"},
    413: {
        "description": "Body above 4,669,440 bytes (what a synchronous Lambda invocation carries once "
        "API Gateway base64-encodes it): use POST /api/v1/uploads"
    },
}


async def _read_payload(request: Request, max_bytes: int) -> Payload:
    """The body as CSV bytes (multipart ``file=`` or ``text/csv``) or JSON records (object or list)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(_too_large(max_bytes))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInputError("multipart upload needs a file field named 'file'")
        return Payload.of_csv(await _bounded(upload.read(), max_bytes), "api-csv")
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLargeError(_too_large(max_bytes))
    if content_type in ("text/csv", "application/csv"):
        return Payload.of_csv(body, "api-csv")
    if content_type in ("application/json", ""):
        return Payload.of_records(_json_records(body))
    raise InvalidInputError(
        f"unsupported content type '{content_type}': send multipart/form-data (file=), text/csv or JSON"
    )


async def _bounded(reading: Any, max_bytes: int) -> bytes:
    data: bytes = await reading
    if len(data) > max_bytes:
        raise PayloadTooLargeError(_too_large(max_bytes))
    return data


def _too_large(max_bytes: int) -> str:
    return (
        f"the body is larger than {max_bytes:,} bytes (what one API call can carry); request an "
        "upload URL with POST /api/v1/uploads and PUT the file there"
    )


def _json_records(body: bytes) -> list[dict[str, Any]]:
    # Every key is followed by one colon (colons inside strings only add to the count): a body with
    # far more keys than 10,000 records can hold is refused before the parser spends a second on it.
    if body.count(b":") > MAX_JSON_COLONS:
        raise InvalidInputError(
            f"the JSON body has more than {MAX_JSON_COLONS:,} keys (or colons); upload a CSV for more"
        )
    try:
        document = json.loads(body)
    except RecursionError as exc:
        # Records are at most three levels deep (list, event, context); the parser's own recursion
        # bound stops anything deeper early, at linear cost.
        raise InvalidInputError("the JSON body is nested too deeply (events are at most 3 levels)") from exc
    except ValueError as exc:  # malformed JSON, bad UTF-8, or an integer beyond Python's digit limit
        raise InvalidInputError(f"the body is not valid JSON: {str(exc)[:200]}") from exc
    records = document if isinstance(document, list) else [document]
    if not records:
        raise InvalidInputError("the JSON list is empty")
    if len(records) > MAX_JSON_RECORDS:
        raise InvalidInputError(f"at most {MAX_JSON_RECORDS} records per request; upload a CSV for more")
    if not all(isinstance(record, dict) for record in records):
        raise InvalidInputError("send one JSON object or a list of objects")
    return records


def _report_response(report: IngestReport) -> JSONResponse:
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if report.status == "failed" else status.HTTP_200_OK
    body = IngestReportOut.model_validate(report.as_dict()).model_dump(mode="json")
    return JSONResponse(status_code=code, content=body)


async def _ingest(
    kind: Literal["items", "interactions"],
    request: Request,
    tenant_id: str,
    max_bytes: int,
    now: datetime,
    intake: Intake,
) -> JSONResponse:
    payload = await _read_payload(request, max_bytes)
    report = await run_in_threadpool(
        intake.ingest, tenant_id, kind, payload, upload_id=new_id("upload"), now=now
    )
    return _report_response(report)


@router.post("/items", response_model=IngestReportOut, responses=_REPORT_RESPONSES, openapi_extra=_BODY_DOC)
async def post_items(
    request: Request,
    principal: Writer,
    settings: SettingsDep,
    now: ClockDep,
    intake: IntakeDep,
) -> JSONResponse:
    """Upload catalogue items (CSV ``item_id,title,category,price,brand,description`` or JSON).

    Items upsert by ``item_id``: a later upload replaces the earlier row.
    """
    return await _ingest("items", request, principal.tenant_id, settings.max_body_bytes, now, intake)


@router.post(
    "/interactions", response_model=IngestReportOut, responses=_REPORT_RESPONSES, openapi_extra=_BODY_DOC
)
async def post_interactions(
    request: Request,
    principal: Writer,
    settings: SettingsDep,
    now: ClockDep,
    intake: IntakeDep,
) -> JSONResponse:
    """Upload interactions (CSV ``user_id,item_id,interaction_type,timestamp,rating``) or JSON events."""
    return await _ingest(
        "interactions",
        request,
        principal.tenant_id,
        settings.max_body_bytes,
        now,
        intake,
    )


@router.post("/uploads", status_code=status.HTTP_201_CREATED, response_model=UploadTicket)
def post_upload(
    body: UploadRequest, principal: Writer, settings: SettingsDep, now: ClockDep, uploads: Uploads, data: Data
) -> UploadTicket:
    """A presigned URL for a CSV too large for the API; the drop-folder ingest validates it.

    The upload is recorded as ``pending`` for the caller's tenant first: the drop folder ingests a file
    only when such a record exists under the tenant its key names, never on the key's prefix alone.
    """
    upload_id = new_id("upload")
    uploads.put_pending(principal.tenant_id, upload_id, body.kind, now)
    url, key = data.presign_drop_upload(
        principal.tenant_id, body.kind, f"{upload_id}.csv", settings.upload_url_ttl_seconds
    )
    return UploadTicket(
        upload_id=upload_id,
        url=url,
        headers={"Content-Type": "text/csv"},
        key=key,
        expires_in=settings.upload_url_ttl_seconds,
    )


@router.get("/uploads/{upload_id}", response_model=IngestReportOut)
def get_upload(upload_id: UploadId, principal: Reader, uploads: Uploads) -> IngestReportOut:
    """The validation report of an upload (API or drop folder)."""
    return IngestReportOut.model_validate(uploads.get(principal.tenant_id, upload_id).report)


class ErasureOut(BaseModel):
    """What ``DELETE /api/v1/users/{user_id}`` removed."""

    user_id: str
    interactions_deleted: int
    objects_rewritten: int
    recent_events_deleted: int


#: Any id ingestion ever accepted, whatever its characters (``/``, spaces, unicode, ``%``): erasure
#: must reach every one. In a path the id is one percent-encoded segment (``/`` as ``%2F``); the
#: body-based ``POST /api/v1/users/erase`` needs no encoding at all. Control characters never were ids.
_ANY_ID = r"^[^\x00-\x1f\x7f]+$"
ShopperId = Annotated[str, Path(min_length=1, max_length=256, pattern=_ANY_ID)]
ItemId = Annotated[str, Path(min_length=1, max_length=256, pattern=_ANY_ID)]


class ErasureRequest(BaseModel):
    """``POST /api/v1/users/erase``: the shopper to erase, as sent with their interactions."""

    user_id: Annotated[str, Field(min_length=1, max_length=256, pattern=_ANY_ID)]


def _erase(
    tenant_id: str, user_id: str, now: datetime, data: DataStore, service: IngestionService
) -> ErasureOut:
    report = erase_user(data, service.recent_events, tenant_id, user_id, now=now)
    return ErasureOut(**vars(report))


@router.delete("/users/{user_id:path}", response_model=ErasureOut)
def delete_user(
    user_id: ShopperId, principal: Writer, now: ClockDep, data: Data, service: Ingestion
) -> ErasureOut:
    """Erase a shopper (GDPR): their interactions leave raw data, training snapshots and the live feed,
    and serving answers them without personalisation at once, with every model version.

    An id with ``/`` or other special characters is one percent-encoded segment (``a%2Fb``); or use
    ``POST /api/v1/users/erase``.
    """
    return _erase(principal.tenant_id, user_id, now, data, service)


@router.post("/users/erase", response_model=ErasureOut)
def post_erase_user(
    body: ErasureRequest, principal: Writer, now: ClockDep, data: Data, service: Ingestion
) -> ErasureOut:
    """Erase a shopper given in the body (``{"user_id": ...}``): the same as ``DELETE /api/v1/users/{id}``."""
    return _erase(principal.tenant_id, body.user_id, now, data, service)


@router.delete(
    "/items/{item_id:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "The catalogue has no such item"}},
)
def delete_item(item_id: ItemId, principal: Writer, service: Ingestion) -> Response:
    """Remove an item from the catalogue: no recommendation shows it from the next catalogue check on
    (within a minute). To hide an item but keep it, upload it with ``available`` false.

    An id with ``/`` or other special characters is one percent-encoded segment (``a%2Fb``).
    """
    service.remove_item(principal.tenant_id, item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
