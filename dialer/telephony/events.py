"""The telephony provider port, inbound: what a provider reports about a call, as values.

Every provider's callbacks become :class:`ProviderEvent` values (Twilio's webhooks are parsed
by :mod:`dialer.telephony.twilio.callbacks`; the simulator makes them directly), in one
vocabulary, Twilio's call statuses and ``AnsweredBy`` verdicts, so one ingestion path handles
real webhooks and simulated calls alike. Events arrive late, twice and out of order;
:attr:`ProviderEvent.sequence_number` orders the status events of a call.

The assistant's media stream reports in its own events too (``stream``): when it started
tells whether a person who answered was left waiting (an abandoned call).

The answering-machine verdict comes in its own event (``amd``), not with the status events,
and the two may arrive in either order: keep the verdict with the attempt, and when a
``completed`` call has none yet, :meth:`TelephonyProvider.fetch` returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.telephony.base import CallStatus

EventKind = Literal["status", "amd", "stream"]

#: ``StreamEvent`` values of a media stream's status callback (Twilio ``<Stream
#: statusCallback>``): the assistant is connected once ``stream-started`` comes.
STREAM_STARTED = "stream-started"
STREAM_EVENTS = frozenset({STREAM_STARTED, "stream-stopped", "stream-error"})

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
    #: The provider's error code of a failed call (Twilio ``ErrorCode``, e.g. ``32018``).
    error_code: str | None = None
    #: Stream callbacks (kind ``stream``): ``stream-started``, ``stream-stopped`` or
    #: ``stream-error``; ``timestamp`` is when it happened.
    stream_event: str | None = None

    @property
    def outcome(self) -> Outcome | None:
        """The outcome this event alone reports (see :func:`outcome_for`)."""
        if self.call_status is None:
            return None
        return outcome_for(self.call_status, self.answered_by)


class EventSink(Protocol):
    """Where a provider's events go in process (the simulator's); webhooks parse theirs first."""

    def deliver(self, attempt_id: str, event: ProviderEvent) -> None: ...
