"""What an answered call plays (TwiML): the assistant's media stream, or the voicemail drop.

The twilio SDK is imported when a document is rendered, not with this module."""

from __future__ import annotations

import json

from dialer.telephony.base import CallContext
from dialer.telephony.events import MACHINE_ANSWERS
from dialer.textsafety import xml_safe

#: Longest value of one <Parameter> we send (Twilio caps custom parameters' total size).
MAX_PARAMETER_CHARS = 500


def for_answer(
    ctx: CallContext,
    answered_by: str | None,
    stream_url: str | None,
    stream_callback_url: str | None = None,
) -> str:
    """TwiML for an answered call: voicemail drop for a machine, else the assistant's stream.

    ``stream_callback_url`` is where the stream reports (``stream-started``...): when it
    started tells whether the person who answered was kept waiting (an abandoned call).

    The API refuses text XML cannot carry; it is dropped here too, for rows stored before
    that check and for text rendered from recipient data."""
    from twilio.twiml.voice_response import Connect, VoiceResponse

    response = VoiceResponse()
    if answered_by in MACHINE_ANSWERS:
        if ctx.voicemail_message:
            response.say(xml_safe(ctx.voicemail_message))
        response.hangup()
        return str(response)
    if stream_url is None:
        if ctx.opening_message:
            response.say(xml_safe(ctx.opening_message))
        return str(response)
    connect = Connect()
    if stream_callback_url is None:
        stream = connect.stream(url=stream_url)
    else:
        stream = connect.stream(
            url=stream_url, status_callback=stream_callback_url, status_callback_method="POST"
        )
    for name, value in _parameters(ctx).items():
        stream.parameter(name=name, value=xml_safe(value)[:MAX_PARAMETER_CHARS])
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


def hang_up() -> str:
    """TwiML that ends the call (an answer for an attempt we do not know)."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.hangup()
    return str(response)
