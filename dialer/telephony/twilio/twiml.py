"""What an answered call plays (TwiML): the assistant's media stream, or the voicemail drop.

The twilio SDK is imported when a document is rendered, not with this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dialer.telephony.base import CallContext
from dialer.telephony.events import MACHINE_ANSWERS
from dialer.textsafety import xml_safe

#: Longest value of one <Parameter> we send (Twilio caps custom parameters' total size).
MAX_PARAMETER_CHARS = 500


@dataclass(frozen=True, slots=True)
class OptOutKey:
    """The key that opts the callee out while the opening message plays, and the URL Twilio
    posts a key pressed then to (``Digits``)."""

    digit: str
    action_url: str


#: What a person who pressed the opt-out key hears before the call ends.
OPTED_OUT_MESSAGE = "You will not be called again. Goodbye."
#: Seconds the ``<Gather>`` waits for a key once the opening message has been said.
GATHER_TIMEOUT_S = 1


def for_answer(
    ctx: CallContext,
    answered_by: str | None,
    stream_url: str | None,
    opt_out: OptOutKey | None = None,
    stream_callback_url: str | None = None,
) -> str:
    """TwiML for an answered call: voicemail drop for a machine, else the assistant's stream.

    ``stream_callback_url`` is where the stream reports (``stream-started``...): when it
    started tells whether the person who answered was kept waiting (an abandoned call).

    With an opt-out key, the opening message is said inside a one-key ``<Gather>``: a key
    pressed while it plays goes to ``opt_out.action_url`` (:func:`after_key` answers it); with
    none, the call goes on to the stream, whose ``opening_message_said`` parameter tells the
    assistant the greeting was said. Once the stream runs, the assistant opts a person out
    through the API (``POST /call/{id}/opt_out``).

    The API refuses text XML cannot carry; it is dropped here too, for rows stored before
    that check and for text rendered from recipient data."""
    from twilio.twiml.voice_response import Gather, VoiceResponse

    response = VoiceResponse()
    if answered_by in MACHINE_ANSWERS:
        if ctx.voicemail_message:
            response.say(xml_safe(ctx.voicemail_message))
        response.hangup()
        return str(response)
    opening = xml_safe(ctx.opening_message) if ctx.opening_message else ""
    said = bool(opening) and (opt_out is not None or stream_url is None)
    if opening and opt_out is not None:
        gather = Gather(
            input="dtmf",
            num_digits=1,
            timeout=GATHER_TIMEOUT_S,
            action=opt_out.action_url,
            method="POST",
            action_on_empty_result=False,
        )
        gather.say(opening)
        response.append(gather)
    elif said:
        response.say(opening)
    if stream_url is not None:
        _connect(response, ctx, stream_url, opening_said=said, callback_url=stream_callback_url)
    return str(response)


def after_key(
    ctx: CallContext,
    opted_out: bool,
    stream_url: str | None,
    stream_callback_url: str | None = None,
) -> str:
    """TwiML answering a key pressed during the opening message: the opt-out's confirmation
    and the hang-up, or, for another key, the call going on to the assistant's stream (the
    opening message was said)."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    if opted_out:
        response.say(OPTED_OUT_MESSAGE)
        response.hangup()
    elif stream_url is not None:
        _connect(
            response,
            ctx,
            stream_url,
            opening_said=bool(ctx.opening_message),
            callback_url=stream_callback_url,
        )
    return str(response)


def _connect(
    response: Any,
    ctx: CallContext,
    stream_url: str,
    *,
    opening_said: bool,
    callback_url: str | None,
) -> None:
    from twilio.twiml.voice_response import Connect

    connect = Connect()
    if callback_url is None:
        stream = connect.stream(url=stream_url)
    else:
        stream = connect.stream(
            url=stream_url, status_callback=callback_url, status_callback_method="POST"
        )
    params = _parameters(ctx)
    params["opening_message_said"] = "true" if opening_said else "false"
    for name, value in params.items():
        stream.parameter(name=name, value=xml_safe(value)[:MAX_PARAMETER_CHARS])
    response.append(connect)


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
