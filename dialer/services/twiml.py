"""What an answered call plays (TwiML): the assistant's media stream, or the voicemail drop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import CallAttempt, CallSummary, Campaign, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.services import greeting
from dialer.telephony.events import MACHINE_ANSWERS

#: Longest value of one <Parameter> we send (Twilio caps custom parameters' total size).
MAX_PARAMETER_CHARS = 500


@dataclass(frozen=True, slots=True)
class CallContext:
    """Everything the assistant needs about the call it is connected to."""

    attempt_id: int
    campaign_id: str
    assistant_id: str
    run_id: str
    recipient_id: int
    opening_message: str
    campaign_context: str | None
    speech_settings: dict[str, Any]
    assistant_overrides: dict[str, Any]
    returning: bool
    summaries: tuple[str, ...]
    voicemail_message: str | None


def context(session: Session, attempt_id: int) -> CallContext | None:
    row = session.execute(
        sa.select(CallAttempt, Campaign, Recipient)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Recipient, Recipient.id == CallAttempt.recipient_id)
        .where(CallAttempt.id == attempt_id)
    ).one_or_none()
    if row is None:
        return None
    attempt, campaign, recipient = row
    returning = bool(
        session.scalar(
            sa.select(sa.literal(True))
            .select_from(CallAttempt)
            .join(Campaign, Campaign.id == CallAttempt.campaign_id)
            .where(
                Campaign.tenant_id == campaign.tenant_id,
                CallAttempt.to_number == recipient.phone_number,
                CallAttempt.status == AttemptStatus.ENDED,
                CallAttempt.outcome == Outcome.HUMAN,
                CallAttempt.id != attempt.id,
            )
            .limit(1)
        )
    )
    summaries: tuple[str, ...] = ()
    if campaign.use_short_term_summaries and (campaign.short_term_summaries_limit or 0) > 0:
        summaries = tuple(
            session.scalars(
                sa.select(CallSummary.summary)
                .where(
                    CallSummary.tenant_id == campaign.tenant_id,
                    CallSummary.phone_number == recipient.phone_number,
                )
                .order_by(CallSummary.created_at.desc(), CallSummary.id.desc())
                .limit(campaign.short_term_summaries_limit)
            )
        )
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
        returning=returning and campaign.use_returning_greeting,
        summaries=summaries,
        voicemail_message=campaign.voicemail_message,
    )


def for_answer(ctx: CallContext, answered_by: str | None, stream_url: str | None) -> str:
    """TwiML for an answered call: voicemail drop for a machine, else the assistant's stream."""
    from twilio.twiml.voice_response import Connect, VoiceResponse

    response = VoiceResponse()
    if answered_by in MACHINE_ANSWERS:
        if ctx.voicemail_message:
            response.say(ctx.voicemail_message)
        response.hangup()
        return str(response)
    if stream_url is None:
        if ctx.opening_message:
            response.say(ctx.opening_message)
        return str(response)
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in _parameters(ctx).items():
        stream.parameter(name=name, value=value[:MAX_PARAMETER_CHARS])
    response.append(connect)
    return str(response)


def _parameters(ctx: CallContext) -> dict[str, str]:
    params = {
        "campaign_id": ctx.campaign_id,
        "assistant_id": ctx.assistant_id,
        "run_id": ctx.run_id,
        "recipient_id": str(ctx.recipient_id),
        "attempt_id": str(ctx.attempt_id),
        "opening_message": ctx.opening_message,
        "campaign_context": ctx.campaign_context or "",
        "speech_settings": json.dumps(ctx.speech_settings, sort_keys=True),
        "assistant_overrides": json.dumps(ctx.assistant_overrides, sort_keys=True),
        "returning_recipient": "true" if ctx.returning else "false",
    }
    for index, summary in enumerate(ctx.summaries):
        params[f"summary_{index}"] = summary
    return params
