"""Twilio's callbacks: form params to :class:`~dialer.telephony.events.ProviderEvent`, and
Twilio's way of writing times.

Status callbacks (``CallStatus``, ``SequenceNumber``, ``CallDuration``, ``SipResponseCode``,
``ErrorCode``, ``Timestamp``), async AMD callbacks (``AnsweredBy``) and the media stream's
status callbacks (``StreamSid``, ``StreamEvent``, ``StreamError``, ``Timestamp`` in ISO 8601)
arrive as separate form posts. Unknown
extra params are ignored: Twilio adds fields over time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dialer.errors import ValidationError
from dialer.telephony.base import CallStatus
from dialer.telephony.events import (
    ANSWERED_BY_VALUES,
    STREAM_EVENTS,
    EventKind,
    ProviderEvent,
)


def parse_event(kind: EventKind, params: Mapping[str, str]) -> ProviderEvent:
    """A callback's form params as a :class:`ProviderEvent`, or ValidationError naming the field.

    Unknown extra params are ignored: Twilio adds fields over time.
    """
    if kind not in ("status", "amd", "stream"):
        raise ValidationError("kind", f"must be status, amd or stream, not {kind!r}")
    call_sid = params.get("CallSid", "").strip()
    if not call_sid:
        raise ValidationError("CallSid", "is required")
    if kind == "stream":
        return _stream_event(call_sid, params)
    raw_status = params.get("CallStatus")
    if kind == "status" and not raw_status:
        raise ValidationError("CallStatus", "is required in a status callback")
    answered_by = params.get("AnsweredBy") or None
    if kind == "amd" and answered_by is None:
        raise ValidationError("AnsweredBy", "is required in an AMD callback")
    if answered_by is not None and answered_by not in ANSWERED_BY_VALUES:
        raise ValidationError("AnsweredBy", f"unknown value {answered_by!r}")
    return ProviderEvent(
        kind=kind,
        provider_call_id=call_sid,
        call_status=_call_status(raw_status) if raw_status else None,
        sequence_number=_optional_int(params, "SequenceNumber"),
        answered_by=answered_by,
        duration_s=_optional_int(params, "CallDuration"),
        sip_response_code=_optional_int(params, "SipResponseCode"),
        timestamp=parse_timestamp(params["Timestamp"]) if params.get("Timestamp") else None,
        error_code=params.get("ErrorCode") or None,
    )


def _stream_event(call_sid: str, params: Mapping[str, str]) -> ProviderEvent:
    """A media stream's status callback: ``StreamEvent`` and when (``Timestamp``)."""
    stream_event = params.get("StreamEvent", "")
    if stream_event not in STREAM_EVENTS:
        known = ", ".join(sorted(STREAM_EVENTS))
        raise ValidationError("StreamEvent", f"must be one of {known}, not {stream_event!r}")
    if not params.get("Timestamp"):
        raise ValidationError("Timestamp", "is required in a stream callback")
    return ProviderEvent(
        kind="stream",
        provider_call_id=call_sid,
        call_status=None,
        timestamp=parse_timestamp(params["Timestamp"]),
        stream_event=stream_event,
    )


def format_timestamp(moment: datetime) -> str:
    """``moment`` the way Twilio writes times: RFC 2822 in UTC, ``Tue, 31 Aug 2010 ... +0000``."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from Twilio's RFC 2822 times (ISO 8601 is accepted too)."""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError("Timestamp", f"not a date: {text!r}") from None
    if moment.tzinfo is None:
        raise ValidationError("Timestamp", f"has no time zone: {text!r}")
    return moment.astimezone(UTC)


def _call_status(text: str) -> CallStatus:
    try:
        return CallStatus(text)
    except ValueError:
        raise ValidationError("CallStatus", f"unknown value {text!r}") from None


def _optional_int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationError(name, f"not an integer: {text!r}") from None
