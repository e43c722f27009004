"""The form params a Twilio-compatible carrier posts for a simulated call: its status and
AMD callbacks, and its request for the answer URL's TwiML."""

from __future__ import annotations

from datetime import datetime

from dialer.telephony.base import CallStatus
from dialer.telephony.simulator.call import SimulatedCall
from dialer.telephony.simulator.plan import PlannedEvent
from dialer.telephony.twilio.callbacks import format_timestamp

API_VERSION = "2010-04-01"


def callback_params(call: SimulatedCall, event: PlannedEvent, at: datetime) -> dict[str, str]:
    """The form params of the callback reporting ``event`` (numbers its status callbacks)."""
    if event.kind == "amd":
        params = {
            "AccountSid": call.account_sid,
            "CallSid": call.sid,
            "AnsweredBy": event.answered_by or "unknown",
        }
        if call.answered_at is not None:
            detection_s = (at - call.answered_at).total_seconds() / call.time_scale
            params["MachineDetectionDuration"] = str(round(detection_s * 1000))
        return params
    assert event.status is not None
    params = _call_params(call, event.status)
    params["CallbackSource"] = "call-progress-events"
    params["SequenceNumber"] = str(call.next_sequence())
    params["Timestamp"] = format_timestamp(at)
    if event.status.is_terminal:
        params["CallDuration"] = str(event.duration_s or 0)
        if event.sip_response_code is not None:
            params["SipResponseCode"] = str(event.sip_response_code)
    return params


def stream_params(call: SimulatedCall, event: PlannedEvent, at: datetime) -> dict[str, str]:
    """The form params of a media stream's status callback (``stream-started``...)."""
    params = {
        "AccountSid": call.account_sid,
        "CallSid": call.sid,
        "StreamSid": "MZ" + call.sid[2:],
        "StreamEvent": event.stream_event or "stream-started",
        "Timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if event.stream_event == "stream-error":
        params["StreamError"] = "WebSocket connection failed"
    return params


def answer_params(call: SimulatedCall, answered_by: str | None = None) -> dict[str, str]:
    """The params of the request for the answer URL's TwiML, made when the call connects."""
    params = _call_params(call, CallStatus.IN_PROGRESS)
    if answered_by is not None:
        params["AnsweredBy"] = answered_by
    return params


def _call_params(call: SimulatedCall, status: CallStatus) -> dict[str, str]:
    return {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": status.value,
        "Called": call.to,
        "Caller": call.from_,
        "Direction": "outbound-api",
        "From": call.from_,
        "To": call.to,
    }
