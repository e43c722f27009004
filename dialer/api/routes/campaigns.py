"""``/campaign``: create, read, list, update, delete, and the action endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from dialer.api import pagination, views
from dialer.api.auth import Ctx, KeyActor, TenantId
from dialer.api.json_body import JsonRoute
from dialer.api.schemas.campaigns import (
    CampaignCreate,
    CampaignOut,
    CampaignPatch,
    CampaignWriteOut,
    RecipientBatchOut,
    RejectedRow,
    SpeechSettings,
    StopIn,
)
from dialer.api.schemas.common import ErrorBody, Page
from dialer.api.schemas.preview import PreviewOut
from dialer.api.schemas.waits import CampaignDetailOut, WaitingOut
from dialer.calls.config import default_caps
from dialer.db.models import Campaign
from dialer.errors import ValidationError
from dialer.phone import to_e164
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.services import campaign_waits, export, history, preview
from dialer.services import campaigns as service
from dialer.services.recipients import BatchResult

router = APIRouter(tags=["campaigns"], route_class=JsonRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong credentials"},
    404: {"model": ErrorBody, "description": "No such campaign for this tenant"},
    409: {"model": ErrorBody, "description": "Not legal in the campaign's current state"},
    415: {"model": ErrorBody, "description": "A body of a media type the route does not take"},
    422: {"model": ErrorBody, "description": "Invalid input: each field and its reason"},
}


def _columns(body: CampaignCreate | CampaignPatch, *, defaults: bool) -> dict[str, Any]:
    """Column values from a body: only the fields sent (PATCH), or with defaults (create)."""
    sent = body.model_fields_set
    values: dict[str, Any] = {}
    for name in service.WRITABLE_COLUMNS:
        if name in sent or (defaults and getattr(body, name) is not None):
            values[name] = getattr(body, name)
    if "speech_settings" in values or defaults:
        speech = body.speech_settings or SpeechSettings()
        values["speech_settings"] = speech.model_dump(mode="json")
    if values.get("frequency_caps") is not None:
        caps = body.frequency_caps.model_dump(exclude_none=True)  # type: ignore[union-attr]
        values["frequency_caps"] = caps or None
    if values.get("weekly_schedule") is not None:
        values["weekly_schedule"] = body.weekly_schedule.model_dump(mode="json")  # type: ignore[union-attr]
    return values


def _batch(result: BatchResult | None) -> RecipientBatchOut | None:
    if result is None:
        return None
    return RecipientBatchOut(
        accepted=result.accepted,
        rejected=[
            RejectedRow(row=r.row, phone_number=r.phone_number, reason=r.reason)
            for r in result.rejected
        ],
    )


def _has_caller(phone_number_id: str | None, caller_id_number: str | None) -> bool:
    """Whether calls have a From number: a campaign created before caller numbers were
    registered may hold a free-text ``phone_number_id``, usable only beside a caller ID."""
    if caller_id_number:
        return True
    try:
        to_e164(phone_number_id or "")
    except ValidationError:
        return False
    return True


@router.post("/campaign", status_code=201, response_model=CampaignWriteOut, responses=ERRORS)
def create_campaign(
    body: CampaignCreate, ctx: Ctx, tenant: TenantId, actor: KeyActor
) -> CampaignWriteOut:
    """Create a campaign in ``draft``, with its recipients, list or dial plan. Its caller
    numbers must be the tenant's phone numbers (``POST /phone_number``), named by id or
    number; they are stored and dialed as E.164."""
    plan = [
        service.DialPlanInput(
            e.phone_number_id, e.caller_id_number, e.max_concurrency, list(e.recipients)
        )
        for e in body.dial_plan or []
    ]
    with ctx.transaction() as session:
        campaign, batch = service.create(
            session,
            tenant,
            _columns(body, defaults=True),
            now=ctx.clock(),
            recipients=list(body.recipients or []),
            dial_plan=plan or None,
            recipient_list_id=body.recipient_list_id,
            default_caps=default_caps(ctx.settings),
            actor=actor,
        )
        out = views.campaign(session, campaign, ctx.clock())
    return CampaignWriteOut(**out.model_dump(), recipient_batch=_batch(batch))


@router.get("/campaign/{campaign_id}", response_model=CampaignDetailOut, responses=ERRORS)
def get_campaign(campaign_id: str, ctx: Ctx, tenant: TenantId) -> CampaignDetailOut:
    """The campaign, its counts, and ``waiting``: why the recipients not on a call wait
    (a window, a retry, a free slot, the calls-per-second pace), and until when."""
    slots = ctx.slots()
    with ctx.read() as session:
        campaign = service.get(session, tenant, campaign_id)
        out = views.campaign(session, campaign, ctx.clock())
        found = campaign_waits.waits(session, campaign, ctx.clock(), slots)
    return CampaignDetailOut(**out.model_dump(), waiting=WaitingOut.of(found))


@router.get("/campaign", response_model=Page[CampaignOut], responses=ERRORS)
def list_campaigns(
    ctx: Ctx,
    tenant: TenantId,
    status: CampaignStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[CampaignOut]:
    """The tenant's campaigns, newest first, a page at a time."""
    stmt = sa.select(Campaign).where(Campaign.tenant_id == tenant)
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if cursor is not None:
        created, last_id = pagination.decode(cursor, 2)
        created_at = pagination.decode_time(created)
        stmt = stmt.where(
            sa.or_(
                Campaign.created_at < created_at,
                sa.and_(Campaign.created_at == created_at, Campaign.id < str(last_id)),
            )
        )
    stmt = stmt.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit + 1)
    with ctx.read() as session:
        rows = list(session.scalars(stmt))
        more = len(rows) > limit
        rows = rows[:limit]
        data = views.campaigns(session, rows, ctx.clock())
    next_cursor = (
        pagination.encode([rows[-1].created_at.isoformat(), rows[-1].id]) if more else None
    )
    return Page[CampaignOut](data=data, next_cursor=next_cursor)


@router.patch("/campaign/{campaign_id}", response_model=CampaignWriteOut, responses=ERRORS)
def patch_campaign(
    campaign_id: str, body: CampaignPatch, ctx: Ctx, tenant: TenantId, actor: KeyActor
) -> CampaignWriteOut:
    """Update fields only; use the action endpoints to start, pause, save_draft or stop."""
    changes = _columns(body, defaults=False)
    if "recipient_list_id" in body.model_fields_set:
        changes["recipient_list_id"] = body.recipient_list_id
    with ctx.transaction() as session:
        campaign, batch = service.update(
            session,
            tenant,
            campaign_id,
            changes,
            now=ctx.clock(),
            recipients=list(body.recipients or []),
            default_caps=default_caps(ctx.settings),
            actor=actor,
        )
        if campaign.caller_id_number is None and not _has_caller(campaign.phone_number_id, None):
            raise ValidationError(
                "caller_id_number",
                "set caller_id_number, or give an E.164 number as phone_number_id",
            )
        out = views.campaign(session, campaign, ctx.clock())
    return CampaignWriteOut(**out.model_dump(), recipient_batch=_batch(batch))


@router.delete("/campaign/{campaign_id}", status_code=204, responses=ERRORS)
def delete_campaign(campaign_id: str, ctx: Ctx, tenant: TenantId, actor: KeyActor) -> Response:
    """Delete a campaign that is not running and has no call in flight (its history stays)."""
    with ctx.transaction() as session:
        service.delete(session, tenant, campaign_id, now=ctx.clock(), actor=actor)
    return Response(status_code=204)


def _act(
    ctx: Ctx,
    tenant: str,
    campaign_id: str,
    action: CampaignAction,
    actor: history.Actor,
    options: dict[str, Any] | None = None,
) -> CampaignOut:
    with ctx.transaction() as session:
        campaign = service.act(
            session, tenant, campaign_id, action, now=ctx.clock(), actor=actor, options=options
        )
        out = views.campaign(session, campaign, ctx.clock())
        running = campaign.status is CampaignStatus.RUNNING
    if running:
        # Started or resumed: its first calls go out now, not at the scheduler's next tick.
        ctx.request_dispatch(campaign_id)
    return out


@router.post("/campaign/{campaign_id}/start", response_model=CampaignOut, responses=ERRORS)
def start_campaign(campaign_id: str, ctx: Ctx, tenant: TenantId, actor: KeyActor) -> CampaignOut:
    """Start from draft or paused (resume); from completed, open a new run over every recipient."""
    return _act(ctx, tenant, campaign_id, CampaignAction.START, actor)


@router.post("/campaign/{campaign_id}/pause", response_model=CampaignOut, responses=ERRORS)
def pause_campaign(campaign_id: str, ctx: Ctx, tenant: TenantId, actor: KeyActor) -> CampaignOut:
    """No new dials; calls in flight finish."""
    return _act(ctx, tenant, campaign_id, CampaignAction.PAUSE, actor)


@router.post("/campaign/{campaign_id}/save_draft", response_model=CampaignOut, responses=ERRORS)
def save_draft(campaign_id: str, ctx: Ctx, tenant: TenantId, actor: KeyActor) -> CampaignOut:
    """Back to draft from paused."""
    return _act(ctx, tenant, campaign_id, CampaignAction.SAVE_DRAFT, actor)


@router.post("/campaign/{campaign_id}/stop", response_model=CampaignOut, responses=ERRORS)
def stop_campaign(
    campaign_id: str, ctx: Ctx, tenant: TenantId, actor: KeyActor, body: StopIn | None = None
) -> CampaignOut:
    """End the campaign: recipients not yet on a call end ``canceled`` (``campaign-stopped``);
    calls in flight finish, or, with ``{"hang_up": true}``, are ended through the provider
    right after the answer (their recipients settle as each call's end comes in)."""
    hang_up = body is not None and body.hang_up
    out = _act(ctx, tenant, campaign_id, CampaignAction.STOP, actor, {"hang_up": hang_up})
    if hang_up:
        ctx.hang_up_campaign(campaign_id)
    return out


# -- launch preview ------------------------------------------------------------------------


@router.get("/campaign/{campaign_id}/preview", response_model=PreviewOut, responses=ERRORS)
def preview_campaign(campaign_id: str, ctx: Ctx, tenant: TenantId) -> PreviewOut:
    """What the campaign would do if it ran now (any state, a draft included), without
    dialing or writing anything: recipients callable now, deferred (by reason, until when),
    to be skipped or suppressed (by reason), and an estimated completion time simulated from
    its slots, the calls-per-second limit, its windows and each recipient's legal hours, its
    retry policy, and call lengths and answer rate (its own history, or the defaults)."""
    with ctx.read() as session:
        found = preview.preview(
            session,
            tenant,
            campaign_id,
            ctx.clock(),
            account_cps=ctx.settings.calls_per_second,
        )
    return PreviewOut.model_validate(found.as_dict())


# -- export of the call attempts -----------------------------------------------------------


_EXPORT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One row per call attempt, in the order they were made, streamed: "
        + ", ".join(f"`{c}`" for c in export.COLUMNS)
        + ". Times are ISO 8601 in UTC; phone numbers are masked to their last four digits "
        "unless `unmask_numbers=true`. A value an attempt does not have is empty (CSV) or "
        "null (JSON Lines).",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.get(
    "/campaign/{campaign_id}/export",
    response_class=StreamingResponse,
    responses={**ERRORS, **_EXPORT_DOC},
)
def export_campaign(
    campaign_id: str,
    ctx: Ctx,
    tenant: TenantId,
    export_format: Annotated[
        export.ExportFormat, Query(alias="format", description="`csv` or `jsonl` (JSON Lines).")
    ] = export.ExportFormat.CSV,
    unmask_numbers: Annotated[
        bool, Query(description="Full phone numbers instead of their last four digits.")
    ] = False,
) -> StreamingResponse:
    """The campaign's call attempts as CSV (default) or JSON Lines, read from the database a
    page at a time while the answer streams."""
    with ctx.read() as session:
        service.get(session, tenant, campaign_id)
    return StreamingResponse(
        export.export_text(ctx.sessions, campaign_id, export_format, unmask_numbers=unmask_numbers),
        media_type=export.MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-attempts.'
            f'{export_format.value}"'
        },
    )
