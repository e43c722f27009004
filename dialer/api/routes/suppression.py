"""``/suppression``: the tenant's do-not-call list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from dialer.api import pagination
from dialer.api.auth import Ctx, TenantId
from dialer.api.json_body import JsonRoute
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.common import DIALABLE, Page
from dialer.api.schemas.suppression import SuppressionIn, SuppressionOut
from dialer.services import suppression as service

router = APIRouter(tags=["do-not-call"], route_class=JsonRoute)


@router.post("/suppression", status_code=201, response_model=SuppressionOut, responses=ERRORS)
def add_number(body: SuppressionIn, ctx: Ctx, tenant: TenantId) -> SuppressionOut:
    """Never call this number again from any campaign of the tenant: its recipients not yet
    on a call end ``suppressed`` (``opted-out``) at once, their queued attempts canceled; no
    call to it starts once this answers (calls in flight finish). Adding a number twice keeps
    the first entry."""
    with ctx.transaction() as session:
        added = service.add(
            session,
            tenant,
            body.phone_number,
            body.reason,
            source=service.SOURCE_API,
            now=ctx.clock(),
        )
        return SuppressionOut.model_validate(added.suppression)


@router.delete("/suppression/{phone_number}", status_code=204, responses=ERRORS)
def remove_number(
    phone_number: Annotated[str, Path(json_schema_extra=DIALABLE)], ctx: Ctx, tenant: TenantId
) -> Response:
    with ctx.transaction() as session:
        service.remove(session, tenant, phone_number)
    return Response(status_code=204)


@router.get("/suppression", response_model=Page[SuppressionOut], responses=ERRORS)
def list_numbers(
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[SuppressionOut]:
    after = pagination.decode_id(cursor) if cursor is not None else None
    with ctx.read() as session:
        rows = service.page(session, tenant, after_id=after, limit=limit + 1)
    page, next_cursor = pagination.by_id(rows, limit)
    return Page[SuppressionOut](
        data=[SuppressionOut.model_validate(r) for r in page], next_cursor=next_cursor
    )
