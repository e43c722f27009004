"""Campaign lifecycle: create, update, act (start, pause, save_draft, stop), delete."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import completion, counters, states
from dialer.db.bulk import for_update
from dialer.db.models import (
    CallAttempt,
    CallerNumber,
    Campaign,
    CampaignRun,
    Recipient,
    RecipientList,
)
from dialer.errors import Conflict, FieldErrors, NotFound, ValidationError
from dialer.policy.attempt_state import AttemptStatus, RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus, apply_action
from dialer.policy.frequency import DEFAULT_CAPS, FrequencyCaps
from dialer.policy.screen import ScreenReason
from dialer.services import greeting, history, phone_numbers, recipient_lists, tenant_limits
from dialer.services.recipients import (
    BatchResult,
    RecipientLike,
    add_batch,
    attach_list,
    check_batch,
)

log = logging.getLogger(__name__)

#: Columns a create or PATCH may write directly.
WRITABLE_COLUMNS = (
    "name",
    "assistant_id",
    "assistant_name",
    "phone_number_id",
    "caller_id_number",
    "max_concurrency",
    "retry_policy",
    "speech_settings",
    "frequency_caps",
    "require_consent",
    "schedule_start_time",
    "schedule_end_time",
    "weekly_schedule",
    "campaign_context",
    "opening_message_template",
    "voicemail_message",
    "use_returning_greeting",
    "use_short_term_summaries",
    "short_term_summaries_limit",
    "machine_detection_timeout_seconds",
    "max_abandon_rate",
)
#: Columns that may not be null once set (a PATCH sending null for one is rejected).
REQUIRED_COLUMNS = frozenset(
    {
        "name",
        "assistant_id",
        "phone_number_id",
        "max_concurrency",
        "retry_policy",
        "speech_settings",
        "use_returning_greeting",
        "use_short_term_summaries",
        "require_consent",
        "max_abandon_rate",
    }
)
FROZEN_WHILE_RUNNING = frozenset(
    {"assistant_id", "assistant_name", "phone_number_id", "caller_id_number", "recipient_list_id"}
)


def _refuse_nulls(values: Mapping[str, Any], errors: FieldErrors) -> None:
    """A null sent for a column that may not be null is refused (422), on create as on PATCH;
    leaving the field out takes its default."""
    for name, value in values.items():
        if value is None and name in REQUIRED_COLUMNS:
            errors.add(name, "may not be null")


def _check_caps(
    session: Session,
    tenant_id: str,
    caps: Mapping[str, Any] | None,
    defaults: FrequencyCaps,
    errors: FieldErrors,
) -> None:
    """A campaign's caps may only be stricter than its tenant's (in force now): fewer
    attempts, more quiet days."""
    if not caps:
        return
    tenant = tenant_limits.tenant_caps(session, tenant_id, defaults)
    for key in ("attempts_per_day", "attempts_per_week"):
        value, ceiling = caps.get(key), getattr(tenant, key)
        if value is not None and ceiling is not None and value > ceiling:
            errors.add(f"frequency_caps.{key}", f"must be at most the tenant's {ceiling}")
    quiet = caps.get("quiet_days_after_answer")
    if quiet is not None and quiet < tenant.quiet_days_after_answer:
        errors.add(
            "frequency_caps.quiet_days_after_answer",
            f"must be at least the tenant's {tenant.quiet_days_after_answer}",
        )


@dataclass(frozen=True, slots=True)
class DialPlanInput:
    phone_number_id: str
    caller_id_number: str | None
    max_concurrency: int | None
    recipients: Sequence[RecipientLike]


def get(session: Session, tenant_id: str, campaign_id: str, *, lock: bool = False) -> Campaign:
    """The tenant's campaign, or :class:`NotFound` (also for another tenant's campaign)."""
    stmt = sa.select(Campaign).where(Campaign.id == campaign_id, Campaign.tenant_id == tenant_id)
    if lock:
        stmt = for_update(session, stmt)
    campaign = session.scalars(stmt).one_or_none()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


#: Campaign columns that name a caller number: one of the tenant's phone numbers, stored E.164.
NUMBER_COLUMNS = ("phone_number_id", "caller_id_number")


def _numbers(
    session: Session,
    tenant_id: str,
    values: Mapping[str, Any],
    errors: FieldErrors,
    prefix: str = "",
) -> dict[str, Any]:
    """``values`` with each caller number resolved to the tenant's registered E.164 number;
    each that is not one is added to ``errors``, naming ``prefix`` + the field."""
    out = dict(values)
    for name in NUMBER_COLUMNS:
        if out.get(name) is not None:
            with errors.check():
                out[name] = phone_numbers.resolve(session, tenant_id, out[name], prefix + name)
    return out


def dialed_from(session: Session, campaign: Campaign) -> list[str]:
    """The numbers the campaign's calls go out from (``caller_id_number or phone_number_id``,
    of the campaign and of each dial-plan entry, as :mod:`dialer.calls.claiming` picks)."""
    numbers = [campaign.caller_id_number or campaign.phone_number_id]
    for caller_id, number_id in session.execute(
        sa.select(CallerNumber.caller_id_number, CallerNumber.phone_number_id).where(
            CallerNumber.campaign_id == campaign.id
        )
    ):
        numbers.append(caller_id or number_id)
    return numbers


def _load_list(session: Session, tenant_id: str, list_id: str, now: datetime) -> RecipientList:
    """The tenant's list, ``ready`` (a list still importing or failed is a 409)."""
    found = session.scalars(
        sa.select(RecipientList).where(
            RecipientList.id == list_id, RecipientList.tenant_id == tenant_id
        )
    ).one_or_none()
    if found is None:
        raise ValidationError("recipient_list_id", "no such recipient list")
    unready = recipient_lists.unready_reason(found, now)
    if unready is not None:
        raise Conflict(f"recipient list {list_id} {unready}")
    return found


def create(
    session: Session,
    tenant_id: str,
    fields: Mapping[str, Any],
    *,
    now: datetime,
    recipients: Sequence[RecipientLike] | None = None,
    dial_plan: list[DialPlanInput] | None = None,
    recipient_list_id: str | None = None,
    default_caps: FrequencyCaps = DEFAULT_CAPS,
    actor: history.Actor = history.OPERATOR,
) -> tuple[Campaign, BatchResult | None]:
    """A new draft campaign with its dial plan and recipients, all in the caller's transaction
    (recorded in its history as made by ``actor``). ``default_caps``: the frequency caps of a
    tenant that set none (its campaign's own may only be stricter)."""
    values = {k: v for k, v in fields.items() if k in WRITABLE_COLUMNS}
    errors = FieldErrors()
    _refuse_nulls(values, errors)
    _check_caps(session, tenant_id, values.get("frequency_caps"), default_caps, errors)
    values = _numbers(session, tenant_id, values, errors)
    plan = _resolve_plan(session, tenant_id, dial_plan or [], errors)
    if recipient_list_id is not None:
        with errors.check():
            _load_list(session, tenant_id, recipient_list_id, now)
    template = values.get("opening_message_template")
    for index, entry in enumerate(dial_plan or []):
        check_batch(entry.recipients, template, errors, f"dial_plan.{index}.recipients.")
    check_batch(recipients or [], template, errors)
    errors.raise_any()
    if plan:
        values["phone_number_id"] = plan[0]["phone_number_id"]
    values.setdefault("retry_policy", {})
    values.setdefault("speech_settings", {})
    values.setdefault("use_returning_greeting", False)
    values.setdefault("use_short_term_summaries", False)
    values.setdefault("require_consent", False)
    campaign = Campaign(
        tenant_id=tenant_id,
        recipient_list_id=recipient_list_id,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(campaign)
    session.flush()
    counters.create(session, campaign.id)
    batch: BatchResult | None = None
    for index, (entry, numbers) in enumerate(zip(dial_plan or [], plan, strict=True)):
        caller = CallerNumber(
            campaign_id=campaign.id,
            phone_number_id=numbers["phone_number_id"],
            caller_id_number=numbers["caller_id_number"],
            max_concurrency=entry.max_concurrency,
        )
        session.add(caller)
        session.flush()
        result = add_batch(
            session,
            campaign,
            entry.recipients,
            now=now,
            caller_number_id=caller.id,
            strict=True,
            field_prefix=f"dial_plan.{index}.recipients.",
        )
        batch = _merge(batch, result)
    if recipients:
        batch = _merge(batch, add_batch(session, campaign, recipients, now=now, strict=True))
    added = batch.accepted if batch is not None else 0
    if recipient_list_id is not None:
        added += attach_list(session, campaign, recipient_list_id, now=now)
        check_template_variables(session, campaign)
    created: dict[str, Any] = {
        "fields": history.snapshot(campaign, WRITABLE_COLUMNS),
        "recipients": added,
    }
    if recipient_list_id is not None:
        created["recipient_list_id"] = recipient_list_id
    if plan:
        created["dial_plan"] = [
            {**numbers, "max_concurrency": entry.max_concurrency}
            for entry, numbers in zip(dial_plan or [], plan, strict=True)
        ]
    history.record(session, campaign, actor, history.Kind.CREATED, created, now=now)
    return campaign, batch


def _resolve_plan(
    session: Session, tenant_id: str, dial_plan: Sequence[DialPlanInput], errors: FieldErrors
) -> list[dict[str, Any]]:
    """Each entry's numbers resolved (:func:`_numbers`); a number heads one entry at most."""
    resolved: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, entry in enumerate(dial_plan):
        numbers = _numbers(
            session,
            tenant_id,
            {"phone_number_id": entry.phone_number_id, "caller_id_number": entry.caller_id_number},
            errors,
            f"dial_plan.{index}.",
        )
        if numbers["phone_number_id"] in seen:
            errors.add(
                f"dial_plan.{index}.phone_number_id",
                f"{numbers['phone_number_id']} appears twice in the dial plan",
            )
        seen.add(numbers["phone_number_id"])
        resolved.append(numbers)
    return resolved


def _merge(total: BatchResult | None, more: BatchResult) -> BatchResult:
    if total is None:
        return more
    total.accepted += more.accepted
    total.rejected.extend(more.rejected)
    return total


def update(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    changes: Mapping[str, Any],
    *,
    now: datetime,
    recipients: Sequence[RecipientLike] | None = None,
    default_caps: FrequencyCaps = DEFAULT_CAPS,
    actor: history.Actor = history.OPERATOR,
) -> tuple[Campaign, BatchResult | None]:
    """Apply a PATCH. Running campaigns take what can change safely; the next dispatch reads it.
    The fields that really changed, and the recipients added, go in its history."""
    campaign = get(session, tenant_id, campaign_id, lock=True)
    errors = FieldErrors()
    _refuse_nulls(changes, errors)
    _check_caps(session, tenant_id, changes.get("frequency_caps"), default_caps, errors)
    changes = _numbers(session, tenant_id, changes, errors)
    start = changes.get("schedule_start_time", campaign.schedule_start_time)
    end = changes.get("schedule_end_time", campaign.schedule_end_time)
    if start is not None and end is not None and end <= start:
        errors.add("schedule_end_time", "must be after schedule_start_time")
    list_id = changes.get("recipient_list_id")
    if list_id is not None:
        with errors.check():
            _load_list(session, tenant_id, list_id, now)
    template = changes.get("opening_message_template", campaign.opening_message_template)
    check_batch(recipients or [], template, errors)
    errors.raise_any()
    if campaign.status is CampaignStatus.RUNNING:
        frozen = sorted(
            name
            for name in FROZEN_WHILE_RUNNING
            if name in changes and changes[name] != getattr(campaign, name)
        )
        if frozen:
            raise Conflict(f"cannot change {', '.join(frozen)} while the campaign is running")
    if campaign.status is CampaignStatus.COMPLETED and recipients:
        # Allowed: the next start (a new run) calls them.
        pass
    before = history.snapshot(campaign, _RECORDED_COLUMNS)
    for name, value in changes.items():
        if name in WRITABLE_COLUMNS:
            setattr(campaign, name, value)
    campaign.updated_at = now
    batch: BatchResult | None = None
    if "recipient_list_id" in changes:
        campaign.recipient_list_id = list_id
    session.flush()
    if recipients:
        batch = add_batch(session, campaign, recipients, now=now, strict=True)
    attached = 0
    if list_id is not None:
        attached = attach_list(session, campaign, list_id, now=now)
    if list_id is not None or "opening_message_template" in changes:
        check_template_variables(session, campaign)
    changed = history.changes(before, history.snapshot(campaign, _RECORDED_COLUMNS))
    if changed:
        details = {"changes": changed}
        history.record(session, campaign, actor, history.Kind.UPDATED, details, now=now)
    if batch is not None and batch.accepted:
        recipients_added(session, campaign, actor, batch, now=now)
    if attached:
        added = {"count": attached, "recipient_list_id": list_id}
        history.record(session, campaign, actor, history.Kind.RECIPIENTS_ADDED, added, now=now)
    return campaign, batch


#: What a PATCH's history compares: the writable columns and the attached list.
_RECORDED_COLUMNS = (*WRITABLE_COLUMNS, "recipient_list_id")


def recipients_added(
    session: Session, campaign: Campaign, actor: history.Actor, batch: BatchResult, *, now: datetime
) -> None:
    """Record a batch of recipients added to ``campaign`` (those accepted, and how many were
    rejected), when any was accepted."""
    if batch.accepted:
        details = {"count": batch.accepted, "rejected": len(batch.rejected)}
        history.record(session, campaign, actor, history.Kind.RECIPIENTS_ADDED, details, now=now)


def act(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    action: CampaignAction,
    *,
    now: datetime,
    actor: history.Actor = history.OPERATOR,
    options: Mapping[str, Any] | None = None,
) -> Campaign:
    """Apply a user action; :class:`~dialer.errors.IllegalTransition` when not legal (409).
    Recorded in the campaign's history with ``options`` (a stop's ``hang_up``)."""
    campaign = get(session, tenant_id, campaign_id, lock=True)
    source = campaign.status
    run_has_dialed = campaign.current_run_id is not None and bool(
        session.scalar(
            sa.select(sa.literal(True))
            .where(CallAttempt.run_id == campaign.current_run_id)
            .limit(1)
        )
    )
    transition = apply_action(
        campaign.status,
        action,
        has_run=campaign.current_run_id is not None,
        run_has_dialed=run_has_dialed,
    )
    if transition.new_run:
        _open_run(session, campaign, now=now)
    if action is CampaignAction.START:
        # Numbers may have been removed since (a completed campaign does not hold its own).
        phone_numbers.require_registered(session, tenant_id, dialed_from(session, campaign))
        counts = counters.read(session, [campaign.id])[campaign.id]
        callable_now = (
            counts[counters.recipient_key(RecipientStatus.PENDING)]
            + counts[counters.recipient_key(RecipientStatus.WAITING_RETRY)]
        )
        if callable_now == 0:
            raise Conflict("the campaign has no callable recipients (pending or due to retry)")
    campaign.status = transition.status
    campaign.ended_reason = transition.ended_reason
    campaign.updated_at = now
    if action is CampaignAction.START:
        # The operator's word that the cause of a pause by the campaign itself was looked
        # at: the failure rate counts dials from now on (see dialer.calls.guard).
        campaign.paused_reason = None
        campaign.resumed_at = now
    elif action is not CampaignAction.PAUSE:
        campaign.paused_reason = None
    if action is CampaignAction.STOP:
        states.end_unreached(
            session, campaign.id, RecipientStatus.CANCELED, ScreenReason.CAMPAIGN_STOPPED, now=now
        )
    if transition.ended_reason is not None:
        completion.close_run(session, campaign.current_run_id, transition.ended_reason, now=now)
    details: dict[str, Any] = {
        "action": action.value,
        "from": source.value,
        "to": campaign.status.value,
        **(options or {}),
    }
    if transition.new_run:
        details["run_id"] = campaign.current_run_id
    if transition.ended_reason is not None:
        details["ended_reason"] = transition.ended_reason.value
    history.record(session, campaign, actor, history.Kind.ACTION, details, now=now)
    session.flush()
    log.info("campaign %s: %s -> %s", campaign.id, action.value, campaign.status.value)
    return campaign


def _open_run(session: Session, campaign: Campaign, *, now: datetime) -> None:
    last = session.scalar(
        sa.select(sa.func.max(CampaignRun.number)).where(CampaignRun.campaign_id == campaign.id)
    )
    run = CampaignRun(campaign_id=campaign.id, number=(last or 0) + 1, started_at=now)
    session.add(run)
    session.flush()
    if campaign.current_run_id is not None:
        # A new pass over the whole list: everyone not still on a call is due again.
        states.reset_for_run(session, campaign.id, now=now)
    campaign.current_run_id = run.id


def delete(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    *,
    now: datetime,
    actor: history.Actor = history.OPERATOR,
) -> None:
    """Delete a campaign; its history stays, this its last entry."""
    campaign = get(session, tenant_id, campaign_id, lock=True)
    if campaign.status is CampaignStatus.RUNNING:
        raise Conflict("cannot delete a running campaign; pause or stop it first")
    in_flight = session.scalar(
        sa.select(sa.func.count())
        .select_from(CallAttempt)
        .where(CallAttempt.campaign_id == campaign.id, CallAttempt.status != AttemptStatus.ENDED)
    )
    if in_flight:
        raise Conflict("cannot delete a campaign while calls are in flight; wait for them to end")
    history.record(session, campaign, actor, history.Kind.DELETED, {}, now=now)
    session.delete(campaign)
    session.flush()


#: Recipients read per query when checking a template against stored metadata.
_SCAN_CHUNK = 5_000


def check_template_variables(session: Session, campaign: Campaign) -> None:
    """Every recipient has every variable of the opening message, or ValidationError.

    Reads the campaign's recipients in keyset chunks (a save-time cost, never a call-time one).
    """
    needed = greeting.variables(campaign.opening_message_template)
    if not needed:
        return
    after = 0
    while True:
        rows = session.execute(
            sa.select(Recipient.id, Recipient.phone_number, Recipient.metadata_)
            .where(Recipient.campaign_id == campaign.id, Recipient.id > after)
            .order_by(Recipient.id)
            .limit(_SCAN_CHUNK)
        ).all()
        if not rows:
            return
        for _id, number, metadata in rows:
            lacking = greeting.missing(campaign.opening_message_template, metadata or {})
            if lacking:
                raise ValidationError(
                    "opening_message_template",
                    f"recipient {number} has no {', '.join(lacking)} in its metadata",
                )
        after = rows[-1][0]
