"""Provider callbacks as values: parsing Twilio's form params, and what a status means for us.

Every provider speaks Twilio's callback vocabulary here, the simulator included, so one
ingestion path handles real webhooks and simulated calls alike. Callbacks arrive late, twice
and out of order; :attr:`ProviderEvent.sequence_number` orders the status callbacks of a call.

Twilio sends the answering-machine verdict (``AnsweredBy``) to the separate AMD callback, not
with the status callbacks, and the two may arrive in either order: keep the verdict with the
attempt, and when a ``completed`` call has none yet, :meth:`TelephonyProvider.fetch` returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

from dialer.errors import ValidationError
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.telephony.base import CallStatus

EventKind = Literal["status", "amd"]

#: ``AnsweredBy`` values that mean an answering machine (or fax) took the call.
MACHINE_ANSWERS = frozenset(
    {
        "machine",  # the call resource's coarse value
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
    }
)
#: Every ``AnsweredBy`` value Twilio documents; ``unknown`` = detection could not decide.
ANSWERED_BY_VALUES = MACHINE_ANSWERS | {"human", "unknown"}

_OUTCOME_OF_FAILURE = {
    CallStatus.BUSY: Outcome.BUSY,
    CallStatus.NO_ANSWER: Outcome.NO_ANSWER,
    CallStatus.FAILED: Outcome.FAILED,
    CallStatus.CANCELED: Outcome.CANCELED,
}
_ATTEMPT_STATUS = {
    CallStatus.QUEUED: AttemptStatus.DIALING,
    CallStatus.INITIATED: AttemptStatus.DIALING,
    CallStatus.RINGING: AttemptStatus.RINGING,
    CallStatus.IN_PROGRESS: AttemptStatus.IN_PROGRESS,
}


def outcome_for(call_status: CallStatus, answered_by: str | None) -> Outcome | None:
    """Our outcome for a call that ended with ``call_status``; None while it is not over.

    ``completed`` covers every answered call, so ``answered_by`` decides between a person and
    a machine. Without a verdict (no detection, or ``unknown``) somebody picked up: human, the
    safe reading for retries and the abandoned-call ratio.
    """
    if call_status is CallStatus.COMPLETED:
        return Outcome.VOICEMAIL if answered_by in MACHINE_ANSWERS else Outcome.HUMAN
    return _OUTCOME_OF_FAILURE.get(call_status)


def attempt_status_for(call_status: CallStatus) -> AttemptStatus:
    """The attempt status a provider call status moves an attempt to (terminal: ended)."""
    return _ATTEMPT_STATUS.get(call_status, AttemptStatus.ENDED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderEvent:
    """One callback, typed. ``duration_s`` is the talk time Twilio reports on the last one."""

    kind: EventKind
    provider_call_id: str
    call_status: CallStatus | None  # always set for status callbacks; AMD ones may omit it
    sequence_number: int | None = None
    answered_by: str | None = None
    duration_s: int | None = None
    sip_response_code: int | None = None
    timestamp: datetime | None = None

    @property
    def outcome(self) -> Outcome | None:
        """The outcome this event alone reports (see :func:`outcome_for`)."""
        if self.call_status is None:
            return None
        return outcome_for(self.call_status, self.answered_by)


class EventSink(Protocol):
    """Where callback params go: the same ingestion code whether real webhooks or simulated."""

    def deliver(self, attempt_id: str, kind: EventKind, params: Mapping[str, str]) -> None: ...


def parse_event(kind: EventKind, params: Mapping[str, str]) -> ProviderEvent:
    """A callback's form params as a :class:`ProviderEvent`, or ValidationError naming the field.

    Unknown extra params are ignored: Twilio adds fields over time.
    """
    if kind not in ("status", "amd"):
        raise ValidationError("kind", f"must be status or amd, not {kind!r}")
    call_sid = params.get("CallSid", "").strip()
    if not call_sid:
        raise ValidationError("CallSid", "is required")
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
