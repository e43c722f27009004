"""``/recipient_list``: reusable lists from a CSV upload or JSON, imported in the background."""

from __future__ import annotations

import functools
import os
from typing import IO, Any

import pydantic
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dialer.api import json_body
from dialer.api.auth import Ctx, TenantId
from dialer.api.context import ApiContext
from dialer.api.json_body import JsonRoute
from dialer.api.limits import read_upload_form
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.common import SERVER_CHECKS, ErrorBody
from dialer.api.schemas.lists import REJECTED_CSV_DOC, RecipientListIn, RecipientListOut
from dialer.db.models import RecipientList
from dialer.errors import FieldErrors, ValidationError
from dialer.phone import DEFAULT_REGION, region_code
from dialer.services import recipient_lists as service

router = APIRouter(tags=["recipient lists"], route_class=JsonRoute)


def _out(rl: RecipientList) -> RecipientListOut:
    return RecipientListOut(
        id=rl.id,
        name=rl.name,
        state=rl.state,
        failure_reason=rl.failure_reason,
        rows_read=rl.rows_read,
        accepted=rl.row_count,
        rejected_count=rl.rejected_count,
        row_count=rl.row_count,
        created_at=rl.created_at,
        updated_at=rl.heartbeat_at,
    )


def _json_schema() -> dict[str, Any]:
    schema = RecipientListIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "file"],
                    # The form is read with at most one file and five other fields, each
                    # sent once; fields other than name and file are ignored.
                    "maxProperties": 6,
                    "additionalProperties": {"type": "string"},
                    "properties": {
                        "name": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            SERVER_CHECKS: "1 to 200 characters once trimmed, no NUL",
                        },
                        "file": {
                            "type": "string",
                            "format": "binary",
                            SERVER_CHECKS: "UTF-8 CSV text with a phone_number column",
                        },
                        "default_region": {
                            "type": "string",
                            "pattern": "^[A-Za-z]{2}$",
                            "default": DEFAULT_REGION,
                            "description": "ISO 3166-1 alpha-2 region of the numbers written "
                            "without a `+` (national format, e.g. `020 7946 0958` with `GB`).",
                            SERVER_CHECKS: "a region whose phone numbers are known",
                        },
                    },
                }
            },
        },
    }
}
_BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Too many imports running; retry later."}
}


@router.post(
    "/recipient_list",
    status_code=202,
    response_model=RecipientListOut,
    responses={**ERRORS, **_BUSY},
    openapi_extra=_BODY,
)
async def create_list(
    request: Request, response: Response, ctx: Ctx, tenant: TenantId
) -> RecipientListOut:
    """A list from JSON rows, or from a CSV upload (``multipart/form-data`` with ``name``,
    ``file`` and optionally ``default_region``): a ``phone_number`` column, every other column
    becomes metadata, UTF-8 with or without a BOM; a record (header or row) of at most 64 KiB
    and 200 fields. Numbers without a ``+`` are national numbers of ``default_region``
    (ISO 3166-1 alpha-2, default ``US``).

    Answers 202 with the list in state ``importing`` once the upload is received and its
    header checked (a CSV with no ``phone_number`` column, empty or not UTF-8 is a 422 naming
    ``file``, the columns found listed, and creates nothing); its rows are imported in the
    background. Poll ``GET /recipient_list/{id}`` until ``state`` is ``ready`` (or
    ``failed``); bad rows are refused (JSON: 0-based index; CSV: line number) and listed by
    ``GET /recipient_list/{id}/rejected``, good rows kept."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        created = await _from_upload(request, ctx, tenant)
    elif content_type.startswith("application/json"):
        created = await _from_json(request, ctx, tenant)
    else:
        raise ValidationError("body", "send application/json or multipart/form-data")
    response.headers["Location"] = f"/recipient_list/{created.id}"
    return _out(created)


async def _from_json(request: Request, ctx: ApiContext, tenant: str) -> RecipientList:
    raw = json_body.loads(await request.body())
    try:
        body = RecipientListIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    return await run_in_threadpool(
        service.import_rows,
        ctx.sessions,
        ctx.imports,
        tenant,
        body.name,
        body.recipients,
        clock=ctx.clock,
    )


async def _from_upload(request: Request, ctx: ApiContext, tenant: str) -> RecipientList:
    # The form parser streams the file into a temporary file (memory up to 1 MiB, then disk).
    try:
        form = await read_upload_form(request)
    except (HTTPException, ValueError) as exc:
        raise ValidationError("body", f"unreadable form: {exc}") from None
    try:
        name, upload, given = form.get("name"), form.get("file"), form.get("default_region")
        region = DEFAULT_REGION
        errors = FieldErrors()
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200 or "\x00" in name:
            errors.add("name", "a list name of 1 to 200 characters (no NUL) is required")
        if isinstance(upload, str) or upload is None:
            errors.add("file", "a CSV file is required")
        if given is not None and not isinstance(given, str):
            errors.add("default_region", "a form field, not a file")
        elif given is not None:
            with errors.check():
                region = region_code(given)
        errors.raise_any()
        assert isinstance(name, str)
        assert upload is not None
        assert not isinstance(upload, str)
        file = await run_in_threadpool(_own_file, upload.file)
    finally:
        await form.close()
    return await run_in_threadpool(
        functools.partial(
            service.import_csv,
            ctx.sessions,
            ctx.imports,
            tenant,
            name.strip(),
            file,
            clock=ctx.clock,
            region=region,
        )
    )


def _own_file(spooled: IO[bytes]) -> IO[bytes]:
    """The uploaded file, opened anew, so it outlives the form (which closes its own at the
    end of the request) for the import to read. ``fileno`` moves a file still in memory to
    disk."""
    own = os.fdopen(os.dup(spooled.fileno()), "rb")
    own.seek(0)
    return own


@router.get("/recipient_list/{list_id}", response_model=RecipientListOut, responses=ERRORS)
def get_list(list_id: str, ctx: Ctx, tenant: TenantId) -> RecipientListOut:
    """The list and its import's progress (``state``, rows read, accepted, rejected)."""
    return _out(service.current(ctx.sessions, tenant, list_id, now=ctx.clock()))


@router.get(
    "/recipient_list/{list_id}/rejected",
    response_class=StreamingResponse,
    responses={**ERRORS, **REJECTED_CSV_DOC},
)
def get_rejected(list_id: str, ctx: Ctx, tenant: TenantId) -> StreamingResponse:
    """The rows the import refused so far, with their reasons, streamed as CSV."""
    found = service.current(ctx.sessions, tenant, list_id, now=ctx.clock())
    return StreamingResponse(
        service.rejected_csv(ctx.sessions, found.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejected-{found.id}.csv"'},
    )
