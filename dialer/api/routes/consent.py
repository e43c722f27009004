"""``/consent``: the tenant's consent records (append-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from dialer.api import pagination
from dialer.api.auth import Ctx, TenantId, credentials_of
from dialer.api.json_body import JsonRoute
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.common import DIALABLE, Page
from dialer.api.schemas.consent import ConsentOut, ConsentRecordIn
from dialer.services import consent as service
from dialer.services import tenancy

router = APIRouter(tags=["consent"], route_class=JsonRoute)


@router.post("/consent", status_code=201, response_model=ConsentOut, responses=ERRORS)
def record_consent(
    body: ConsentRecordIn, request: Request, ctx: Ctx, tenant: TenantId
) -> ConsentOut:
    """Record a number's consent to be called. Records are never changed or deleted: a newer
    one supersedes the older ones for campaigns that require consent, which stay on file.
    ``created_by`` names the API key that recorded it."""
    presented = credentials_of(
        request.headers.get("authorization"), request.headers.get("x-user-id")
    )
    with ctx.transaction() as session:
        by = None if presented is None else tenancy.key_id(session, tenant, presented[0])
        row = service.record(
            session, tenant, body.phone_number, body, now=ctx.clock(), created_by=by
        )
        return ConsentOut.model_validate(row)


@router.get("/consent", response_model=Page[ConsentOut], responses=ERRORS)
def list_consent(
    ctx: Ctx,
    tenant: TenantId,
    phone_number: Annotated[str | None, Query(max_length=40, json_schema_extra=DIALABLE)] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[ConsentOut]:
    """The tenant's consent records, oldest first (of one number when ``phone_number`` is
    given, in any format the API takes: normalised to E.164)."""
    after = pagination.decode_id(cursor) if cursor is not None else None
    with ctx.read() as session:
        rows = service.page(session, tenant, phone_number, after_id=after, limit=limit + 1)
    page, next_cursor = pagination.by_id(rows, limit)
    return Page[ConsentOut](
        data=[ConsentOut.model_validate(r) for r in page], next_cursor=next_cursor
    )
