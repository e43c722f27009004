"""Rows to response bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.api.schemas.campaigns import CampaignOut, Counts, DialPlanOut
from dialer.calls import counters, health
from dialer.clock import utc_now
from dialer.db.models import CallerNumber, Campaign, PhoneNumber, RecipientList
from dialer.policy.attempt_state import Outcome, RecipientStatus
from dialer.policy.health import AbandonTally, HealthLimits

#: Days of calls the abandon rate is shown over (the regulators' window).
ABANDON_WINDOW_DAYS = HealthLimits().abandon_window_days


def counts(values: Mapping[str, int], abandon: AbandonTally | None = None) -> Counts:
    by_state = {s: values[counters.recipient_key(s)] for s in RecipientStatus}
    outcomes = {o.value: values[counters.outcome_key(o)] for o in Outcome}
    r = RecipientStatus
    return Counts(
        total=sum(by_state.values()),
        **{s.value: n for s, n in by_state.items()},
        outcomes=outcomes,
        scheduled=by_state[r.PENDING] + by_state[r.WAITING_RETRY],
        in_progress=by_state[r.IN_FLIGHT],
        ended=sum(by_state[s] for s in (r.DONE, r.EXHAUSTED, r.SUPPRESSED, r.SKIPPED, r.CANCELED)),
        ended_voicemail=outcomes[Outcome.VOICEMAIL.value],
        human_answered_30d=abandon.humans if abandon else 0,
        abandoned_30d=abandon.abandoned if abandon else 0,
        abandon_rate_30d=abandon.rate if abandon else None,
    )


def campaigns(
    session: Session, rows: Sequence[Campaign], now: datetime | None = None
) -> list[CampaignOut]:
    """Response bodies for ``rows``, with counts, list and dial plan in a few queries;
    ``now`` ends the abandon rate's window."""
    ids = [c.id for c in rows]
    values = counters.read(session, ids)
    abandon = health.abandon_tallies(session, ids, now=now or utc_now(), days=ABANDON_WINDOW_DAYS)
    list_ids = {c.recipient_list_id for c in rows if c.recipient_list_id}
    lists = {
        rl.id: rl
        for rl in session.scalars(sa.select(RecipientList).where(RecipientList.id.in_(list_ids)))
    }
    plans: dict[str, list[DialPlanOut]] = {}
    callers = list(
        session.scalars(
            sa.select(CallerNumber)
            .where(CallerNumber.campaign_id.in_(ids))
            .order_by(CallerNumber.phone_number_id)
        )
    )
    numbers = {c.caller_id_number or c.phone_number_id for c in callers}
    quarantined: dict[str, str | None] = {}
    if numbers:
        found = session.execute(
            sa.select(PhoneNumber.number, PhoneNumber.quarantine_reason).where(
                PhoneNumber.number.in_(numbers), PhoneNumber.quarantined_at.is_not(None)
            )
        )
        quarantined = {number: reason for number, reason in found}
    for caller in callers:
        number = caller.caller_id_number or caller.phone_number_id
        entry = DialPlanOut.model_validate(caller).model_copy(
            update={
                "quarantined": number in quarantined,
                "quarantine_reason": quarantined.get(number),
            }
        )
        plans.setdefault(caller.campaign_id, []).append(entry)
    out = []
    for c in rows:
        rl = lists.get(c.recipient_list_id) if c.recipient_list_id else None
        out.append(
            CampaignOut(
                id=c.id,
                name=c.name,
                assistant_id=c.assistant_id,
                channel=c.channel,
                phone_number_id=c.phone_number_id,
                status=c.status.value,
                max_concurrency=c.max_concurrency,
                retry_policy=c.retry_policy,
                speech_settings=c.speech_settings,
                frequency_caps=c.frequency_caps,
                require_consent=bool(c.require_consent),
                assistant_name=c.assistant_name,
                caller_id_number=c.caller_id_number,
                schedule_start_time=c.schedule_start_time,
                schedule_end_time=c.schedule_end_time,
                weekly_schedule=c.weekly_schedule,
                campaign_context=c.campaign_context,
                opening_message_template=c.opening_message_template,
                voicemail_message=c.voicemail_message,
                use_returning_greeting=c.use_returning_greeting,
                use_short_term_summaries=c.use_short_term_summaries,
                short_term_summaries_limit=c.short_term_summaries_limit,
                machine_detection_timeout_seconds=c.machine_detection_timeout_seconds,
                recipient_list_id=c.recipient_list_id,
                recipient_list_name=rl.name if rl else None,
                recipient_list_row_count=rl.row_count if rl else None,
                dial_plan=plans.get(c.id),
                ended_reason=c.ended_reason.value if c.ended_reason else None,
                paused_reason=c.paused_reason,
                max_abandon_rate=c.max_abandon_rate,
                current_run_id=c.current_run_id,
                counts=counts(values[c.id], abandon[c.id]),
                created_at=c.created_at,
                updated_at=c.updated_at,
            )
        )
    return out


def campaign(session: Session, row: Campaign, now: datetime | None = None) -> CampaignOut:
    return campaigns(session, [row], now)[0]
