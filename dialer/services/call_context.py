"""What the assistant gets about the call it is connected to, read from the database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import CallAttempt, CallSummary, Campaign, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.services import greeting
from dialer.telephony.base import CallContext


def call_context(session: Session, attempt_id: int) -> CallContext | None:
    """The context of attempt ``attempt_id``'s call, or None when there is no such attempt."""
    row = session.execute(
        sa.select(CallAttempt, Campaign, Recipient)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Recipient, Recipient.id == CallAttempt.recipient_id)
        .where(CallAttempt.id == attempt_id)
    ).one_or_none()
    if row is None:
        return None
    attempt, campaign, recipient = row
    returning = campaign.use_returning_greeting and _reached_before(session, campaign, attempt)
    summaries = _summaries(session, campaign, recipient.phone_number)
    return CallContext(
        attempt_id=attempt.id,
        campaign_id=campaign.id,
        assistant_id=campaign.assistant_id,
        run_id=attempt.run_id,
        recipient_id=recipient.id,
        opening_message=greeting.render(campaign.opening_message_template, recipient.metadata_),
        campaign_context=campaign.campaign_context,
        speech_settings=dict(campaign.speech_settings),
        assistant_overrides=dict(recipient.assistant_overrides),
        returning=returning,
        summaries=summaries,
        voicemail_message=campaign.voicemail_message,
    )


def _reached_before(session: Session, campaign: Campaign, attempt: CallAttempt) -> bool:
    """A person of the tenant's answered a call to this number before."""
    return bool(
        session.scalar(
            sa.select(sa.literal(True))
            .select_from(CallAttempt)
            .join(Campaign, Campaign.id == CallAttempt.campaign_id)
            .where(
                Campaign.tenant_id == campaign.tenant_id,
                CallAttempt.to_number == attempt.to_number,
                CallAttempt.status == AttemptStatus.ENDED,
                CallAttempt.outcome == Outcome.HUMAN,
                CallAttempt.id != attempt.id,
            )
            .limit(1)
        )
    )


def _summaries(session: Session, campaign: Campaign, phone_number: str) -> tuple[str, ...]:
    """The latest summaries of calls to the number, when the campaign hands them on."""
    limit = campaign.short_term_summaries_limit or 0
    if not campaign.use_short_term_summaries or limit <= 0:
        return ()
    return tuple(
        session.scalars(
            sa.select(CallSummary.summary)
            .where(
                CallSummary.tenant_id == campaign.tenant_id,
                CallSummary.phone_number == phone_number,
            )
            .order_by(CallSummary.created_at.desc(), CallSummary.id.desc())
            .limit(limit)
        )
    )
