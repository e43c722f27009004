"""``/campaign/{id}/recipients``: append in batches (also while running), list by status."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from dialer.api import pagination
from dialer.api.auth import Ctx, KeyActor, TenantId
from dialer.api.json_body import JsonRoute
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.campaigns import RecipientBatchOut, RejectedRow
from dialer.api.schemas.common import Page
from dialer.api.schemas.recipients import (
    DecisionOut,
    RecipientBatchIn,
    RecipientCallOut,
    RecipientOut,
)
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import RecipientStatus
from dialer.services import campaigns, timeline
from dialer.services.recipients import add_batch

router = APIRouter(tags=["recipients"], route_class=JsonRoute)


@router.post(
    "/campaign/{campaign_id}/recipients", response_model=RecipientBatchOut, responses=ERRORS
)
def add_recipients(
    campaign_id: str, body: RecipientBatchIn, ctx: Ctx, tenant: TenantId, actor: KeyActor
) -> RecipientBatchOut:
    """Append a batch; each row is accepted, or rejected with its index and reason
    (``invalid-number: ...``, ``duplicate``, ``suppressed``). Good rows are kept."""
    with ctx.transaction() as session:
        campaign = campaigns.get(session, tenant, campaign_id, lock=True)
        result = add_batch(session, campaign, body.recipients, now=ctx.clock())
        campaign.updated_at = ctx.clock()
        campaigns.recipients_added(session, campaign, actor, result, now=ctx.clock())
    return RecipientBatchOut(
        accepted=result.accepted,
        rejected=[
            RejectedRow(row=r.row, phone_number=r.phone_number, reason=r.reason)
            for r in result.rejected
        ],
    )


@router.get(
    "/campaign/{campaign_id}/recipients", response_model=Page[RecipientOut], responses=ERRORS
)
def list_recipients(
    campaign_id: str,
    ctx: Ctx,
    tenant: TenantId,
    status: RecipientStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[RecipientOut]:
    """The campaign's recipients in the order they were added, each with its calls (attempt
    ids for ``GET /call/{id}``, and the provider's call ids)."""
    with ctx.read() as session:
        campaigns.get(session, tenant, campaign_id)
        stmt = sa.select(Recipient).where(Recipient.campaign_id == campaign_id)
        if status is not None:
            stmt = stmt.where(Recipient.status == status)
        if cursor is not None:
            stmt = stmt.where(Recipient.id > pagination.decode_id(cursor))
        rows = list(session.scalars(stmt.order_by(Recipient.id).limit(limit + 1)))
        page, next_cursor = pagination.by_id(rows, limit)
        calls = _calls_of(session, [r.id for r in page])
    return Page[RecipientOut](
        data=[
            RecipientOut.model_validate(r).model_copy(update={"calls": calls.get(r.id, [])})
            for r in page
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/campaign/{campaign_id}/recipients/{recipient_id}/timeline",
    response_model=Page[DecisionOut],
    responses=ERRORS,
)
def recipient_timeline(
    campaign_id: str,
    recipient_id: Annotated[int, Path(ge=1, le=pagination.MAX_ID)],
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[DecisionOut]:
    """Every decision about the recipient, oldest first: why it waited, until when, which
    zones were checked when it was dialed, each call's outcome and the retry it scheduled,
    where it ended and why."""
    after = 0 if cursor is None else pagination.decode_id(cursor)
    with ctx.read() as session:
        rows = timeline.page(
            session, tenant, campaign_id, recipient_id, after=after, limit=limit + 1
        )
    page, next_cursor = pagination.by_id(rows, limit)
    return Page[DecisionOut](
        data=[DecisionOut.model_validate(row) for row in page], next_cursor=next_cursor
    )


def _calls_of(session: Session, recipient_ids: list[int]) -> dict[int, list[RecipientCallOut]]:
    """The attempts of each recipient of a page, in one query (the (recipient, attempt)
    unique index)."""
    calls: dict[int, list[RecipientCallOut]] = {}
    if not recipient_ids:
        return calls
    for recipient_id, attempt_id, number, call_id in session.execute(
        sa.select(
            CallAttempt.recipient_id,
            CallAttempt.id,
            CallAttempt.attempt_number,
            CallAttempt.provider_call_id,
        )
        .where(CallAttempt.recipient_id.in_(recipient_ids))
        .order_by(CallAttempt.recipient_id, CallAttempt.attempt_number)
    ):
        calls.setdefault(recipient_id, []).append(
            RecipientCallOut(id=attempt_id, attempt_number=number, provider_call_id=call_id)
        )
    return calls
