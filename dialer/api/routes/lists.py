"""``/recipient_list``: reusable lists from a CSV upload (streamed) or JSON."""

from __future__ import annotations

from typing import IO, Any

import pydantic
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dialer.api import json_body
from dialer.api.auth import Ctx, TenantId
from dialer.api.context import ApiContext
from dialer.api.json_body import JsonRoute
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.common import SERVER_CHECKS
from dialer.api.schemas.lists import (
    ListRejectedRow,
    RecipientListCreated,
    RecipientListIn,
    RecipientListOut,
)
from dialer.errors import ValidationError
from dialer.services import recipient_lists as service
from dialer.services.recipient_lists import ImportResult

router = APIRouter(tags=["recipient lists"], route_class=JsonRoute)


def _created(result: ImportResult) -> RecipientListCreated:
    rl = result.recipient_list
    return RecipientListCreated(
        id=rl.id,
        name=rl.name,
        row_count=rl.row_count,
        created_at=rl.created_at,
        accepted=result.accepted,
        rejected_count=result.rejected_count,
        rejected=[
            ListRejectedRow(row=r.row, phone_number=r.phone_number, reason=r.reason)
            for r in result.rejected
        ],
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
                    },
                }
            },
        },
    }
}


@router.post(
    "/recipient_list",
    status_code=201,
    response_model=RecipientListCreated,
    responses=ERRORS,
    openapi_extra=_BODY,
)
async def create_list(request: Request, ctx: Ctx, tenant: TenantId) -> RecipientListCreated:
    """A list from JSON rows, or from a CSV upload (``multipart/form-data`` with ``name`` and
    ``file``): a ``phone_number`` column, every other column becomes metadata, UTF-8 with or
    without a BOM. The CSV is parsed as a stream. Bad rows are reported (JSON: 0-based index;
    CSV: line number), good rows kept."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _from_upload(request, ctx, tenant)
    if not content_type.startswith("application/json"):
        raise ValidationError("body", "send application/json or multipart/form-data")
    raw = json_body.loads(await request.body())
    try:
        body = RecipientListIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    return await run_in_threadpool(_store_rows, ctx, tenant, body)


def _store_rows(ctx: ApiContext, tenant: str, body: RecipientListIn) -> RecipientListCreated:
    with ctx.transaction() as session:
        result = service.create_from_rows(
            session, tenant, body.name, body.recipients, now=ctx.clock()
        )
        return _created(result)


async def _from_upload(request: Request, ctx: ApiContext, tenant: str) -> RecipientListCreated:
    try:
        form = await request.form(max_files=1, max_fields=5)
    except (HTTPException, ValueError) as exc:
        raise ValidationError("body", f"unreadable form: {exc}") from None
    try:
        name, upload = form.get("name"), form.get("file")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200 or "\x00" in name:
            raise ValidationError("name", "a list name of 1 to 200 characters (no NUL) is required")
        if isinstance(upload, str) or upload is None:
            raise ValidationError("file", "a CSV file is required")
        return await run_in_threadpool(_store_csv, ctx, tenant, name.strip(), upload.file)
    finally:
        await form.close()


def _store_csv(ctx: ApiContext, tenant: str, name: str, stream: IO[bytes]) -> RecipientListCreated:
    with ctx.transaction() as session:
        result = service.create_from_csv(session, tenant, name, stream, now=ctx.clock())
        return _created(result)


@router.get("/recipient_list/{list_id}", response_model=RecipientListOut, responses=ERRORS)
def get_list(list_id: str, ctx: Ctx, tenant: TenantId) -> RecipientListOut:
    with ctx.read() as session:
        return RecipientListOut.model_validate(service.get(session, tenant, list_id))
