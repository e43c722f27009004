"""Call attempts: a campaign's calls, the tenant's calls in flight, and one call with its
recipient's attempt history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from pydantic import Field
from sqlalchemy.orm import Session

from dialer.api import pagination
from dialer.api.auth import Ctx, TenantId
from dialer.api.json_body import JsonRoute
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.calls import CallDetailOut, CallOut, LiveCallOut
from dialer.api.schemas.common import NO_NUL_PATTERN, Input, Output, Page, XmlSafeText
from dialer.api.schemas.suppression import OptOutIn, OptOutOut
from dialer.db.models import CallAttempt, CallSummary, Campaign
from dialer.errors import NotFound
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.services import campaigns, suppression

router = APIRouter(tags=["calls"], route_class=JsonRoute)


@router.get("/campaign/{campaign_id}/calls", response_model=Page[CallOut], responses=ERRORS)
def list_calls(
    campaign_id: str,
    ctx: Ctx,
    tenant: TenantId,
    recipient_id: Annotated[int | None, Query(ge=1, le=pagination.MAX_ID)] = None,
    status: AttemptStatus | None = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[CallOut]:
    """Every dial of the campaign, oldest first; only one recipient's (``recipient_id``),
    or those in one ``status`` or with one ``outcome``, when asked (filters combine)."""
    with ctx.read() as session:
        campaigns.get(session, tenant, campaign_id)
        stmt = sa.select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        if recipient_id is not None:
            stmt = stmt.where(CallAttempt.recipient_id == recipient_id)
        if status is not None:
            stmt = stmt.where(CallAttempt.status == status)
        if outcome is not None:
            stmt = stmt.where(CallAttempt.outcome == outcome)
        if cursor is not None:
            stmt = stmt.where(CallAttempt.id > pagination.decode_id(cursor))
        rows = list(session.scalars(stmt.order_by(CallAttempt.id).limit(limit + 1)))
    page, next_cursor = pagination.by_id(rows, limit)
    return Page[CallOut](data=[CallOut.model_validate(r) for r in page], next_cursor=next_cursor)


class LiveFilter(StrEnum):
    """Calls in flight: all of them (``live``), or those in one status."""

    LIVE = "live"
    QUEUED = AttemptStatus.QUEUED.value
    DIALING = AttemptStatus.DIALING.value
    RINGING = AttemptStatus.RINGING.value
    IN_PROGRESS = AttemptStatus.IN_PROGRESS.value


@router.get("/call", response_model=Page[LiveCallOut], responses={k: ERRORS[k] for k in (401, 422)})
def list_live_calls(
    ctx: Ctx,
    tenant: TenantId,
    status: LiveFilter = LiveFilter.LIVE,
    campaign_id: Annotated[
        str | None, Query(min_length=1, max_length=36, pattern=NO_NUL_PATTERN)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[LiveCallOut]:
    """The tenant's calls in flight (``status=live``: claimed, dialing, ringing or answered;
    or one of those statuses), of every campaign or of ``campaign_id``, oldest first.
    Each names its provider call id (null until the provider took the call)."""
    live = (
        CallAttempt.status != AttemptStatus.ENDED
        if status is LiveFilter.LIVE
        else CallAttempt.status == AttemptStatus(status.value)
    )
    stmt = (
        sa.select(CallAttempt)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(Campaign.tenant_id == tenant, live)
    )
    if campaign_id is not None:
        stmt = stmt.where(CallAttempt.campaign_id == campaign_id)
    if cursor is not None:
        stmt = stmt.where(CallAttempt.id > pagination.decode_id(cursor))
    with ctx.read() as session:
        rows = list(session.scalars(stmt.order_by(CallAttempt.id).limit(limit + 1)))
    page, next_cursor = pagination.by_id(rows, limit)
    return Page[LiveCallOut](
        data=[LiveCallOut.model_validate(r) for r in page], next_cursor=next_cursor
    )


def _own_attempt(session: Session, tenant: str, call_id: int) -> CallAttempt:
    """The tenant's call attempt, or NotFound (another tenant's looks missing)."""
    attempt = session.scalars(
        sa.select(CallAttempt)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.id == call_id, Campaign.tenant_id == tenant)
    ).one_or_none()
    if attempt is None:
        raise NotFound(f"call {call_id} not found")
    return attempt


@router.get("/call/{call_id}", response_model=CallDetailOut, responses=ERRORS)
def get_call(
    call_id: Annotated[int, Path(ge=1, le=pagination.MAX_ID)], ctx: Ctx, tenant: TenantId
) -> CallDetailOut:
    """One call attempt: status, outcome, answered_by, duration, and the recipient's history."""
    with ctx.read() as session:
        attempt = _own_attempt(session, tenant, call_id)
        history = session.scalars(
            sa.select(CallAttempt)
            .where(CallAttempt.recipient_id == attempt.recipient_id)
            .order_by(CallAttempt.attempt_number)
        )
        return CallDetailOut(
            **CallOut.model_validate(attempt).model_dump(),
            history=[CallOut.model_validate(a) for a in history],
        )


class SummaryIn(Input):
    summary: XmlSafeText = Field(min_length=1, max_length=10_000)


class SummaryOut(Output):
    attempt_id: int
    phone_number: str
    summary: str
    created_at: datetime


@router.post(
    "/call/{call_id}/summary", status_code=201, response_model=SummaryOut, responses=ERRORS
)
def store_summary(
    call_id: Annotated[int, Path(ge=1, le=pagination.MAX_ID)],
    body: SummaryIn,
    ctx: Ctx,
    tenant: TenantId,
) -> SummaryOut:
    """Store the assistant's summary of a call; later calls to the same number receive the
    newest ones (``short_term_summaries_limit``). Posting again replaces the summary."""
    with ctx.transaction() as session:
        attempt = _own_attempt(session, tenant, call_id)
        row = session.scalars(
            sa.select(CallSummary).where(CallSummary.attempt_id == attempt.id)
        ).one_or_none()
        if row is None:
            row = CallSummary(
                tenant_id=tenant,
                attempt_id=attempt.id,
                phone_number=attempt.to_number,
                summary=body.summary,
                created_at=ctx.clock(),
            )
            session.add(row)
        else:
            row.summary = body.summary
        session.flush()
        return SummaryOut(
            attempt_id=attempt.id,
            phone_number=row.phone_number,
            summary=row.summary,
            created_at=row.created_at,
        )


@router.post("/call/{call_id}/opt_out", response_model=OptOutOut, responses=ERRORS)
def opt_out(
    call_id: Annotated[int, Path(ge=1, le=pagination.MAX_ID)],
    ctx: Ctx,
    tenant: TenantId,
    body: OptOutIn | None = None,
) -> OptOutOut:
    """The person on this call asked never to be called again (for the assistant): the
    number goes on the tenant's do-not-call list (source ``call-api:<call id>``), its
    recipients not yet on a call end ``suppressed`` (``opted-out``) in every campaign of the
    tenant, their queued attempts canceled, in one transaction: no call to the number starts
    once this answers. This call goes on until it ends. Asking again changes nothing and
    answers the same entry, with nothing more ended."""
    with ctx.transaction() as session:
        attempt = _own_attempt(session, tenant, call_id)
        added = suppression.add(
            session,
            tenant,
            attempt.to_number,
            body.reason if body is not None else None,
            source=suppression.call_api_source(attempt.id),
            now=ctx.clock(),
        )
        entry = added.suppression
        return OptOutOut(
            phone_number=entry.phone_number,
            reason=entry.reason,
            source=entry.source,
            created_at=entry.created_at,
            recipients_suppressed=added.ended.recipients,
            attempts_canceled=added.ended.attempts_canceled,
        )
