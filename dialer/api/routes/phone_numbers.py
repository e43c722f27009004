"""``/phone_number``: the tenant's caller numbers, the only numbers its campaigns call from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from dialer.api import pagination
from dialer.api.auth import Ctx, TenantId
from dialer.api.json_body import JsonRoute
from dialer.api.schemas.common import ErrorBody, Page
from dialer.api.schemas.phone_numbers import PhoneNumberIn, PhoneNumberOut
from dialer.errors import ValidationError
from dialer.services import phone_numbers as service

router = APIRouter(tags=["phone numbers"], route_class=JsonRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong credentials"},
    404: {"model": ErrorBody, "description": "No such phone number for this tenant"},
    409: {"model": ErrorBody, "description": "Registered already, or used by a campaign"},
    422: {"model": ErrorBody, "description": "Invalid input: each field and its reason"},
    502: {"model": ErrorBody, "description": "The provider could not be asked"},
}


@router.post("/phone_number", status_code=201, response_model=PhoneNumberOut, responses=ERRORS)
def register_number(body: PhoneNumberIn, ctx: Ctx, tenant: TenantId) -> PhoneNumberOut:
    """Register a caller number. The provider must confirm that the account owns it or has
    it verified as a caller ID (422 on `number` otherwise). A number belongs to one tenant:
    registering one that is registered already (here or by another tenant) is a 409."""
    row = service.register(
        ctx.sessions,
        tenant,
        body.number,
        body.name,
        caller_id_status=ctx.caller_id_status,
        now=ctx.clock(),
    )
    return PhoneNumberOut.model_validate(row)


@router.get("/phone_number", response_model=Page[PhoneNumberOut], responses=ERRORS)
def list_numbers(
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: str | None = None,
) -> Page[PhoneNumberOut]:
    """The tenant's phone numbers in number order, a page at a time."""
    after = None
    if cursor is not None:
        (after,) = pagination.decode(cursor, 1)
        if not isinstance(after, str):
            raise ValidationError("cursor", "not a cursor this API returned")
    with ctx.read() as session:
        rows = service.page(session, tenant, after_number=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = pagination.encode([page[-1].number]) if len(rows) > limit else None
    return Page[PhoneNumberOut](
        data=[PhoneNumberOut.model_validate(r) for r in page], next_cursor=next_cursor
    )


@router.get("/phone_number/{phone_number_id}", response_model=PhoneNumberOut, responses=ERRORS)
def get_number(phone_number_id: str, ctx: Ctx, tenant: TenantId) -> PhoneNumberOut:
    with ctx.read() as session:
        return PhoneNumberOut.model_validate(service.get(session, tenant, phone_number_id))


@router.post(
    "/phone_number/{phone_number_id}/release", response_model=PhoneNumberOut, responses=ERRORS
)
def release_number(phone_number_id: str, ctx: Ctx, tenant: TenantId) -> PhoneNumberOut:
    """Lift the number's quarantine: new calls may be placed from it again, and its health
    is judged on the dials after the release only. Releasing a number that is not
    quarantined changes nothing. A campaign that paused itself for want of a healthy number
    stays paused until started."""
    with ctx.transaction() as session:
        row = service.release(session, tenant, phone_number_id, now=ctx.clock())
        return PhoneNumberOut.model_validate(row)


@router.delete("/phone_number/{phone_number_id}", status_code=204, responses=ERRORS)
def delete_number(phone_number_id: str, ctx: Ctx, tenant: TenantId) -> Response:
    """Remove a number; 409 while a campaign that is not completed uses it. A completed
    campaign that used it cannot start again until it has a registered number."""
    with ctx.transaction() as session:
        service.delete(session, tenant, phone_number_id)
    return Response(status_code=204)
