"""The telephony provider port, outbound: the values a dial crosses with, and the protocol
adapters meet. (Inbound, what providers report, is :mod:`dialer.telephony.events`.)

Adapters (:mod:`dialer.telephony.twilio`, :mod:`dialer.telephony.simulator`) raise only the
provider errors of :mod:`dialer.errors`, and the branch a caller takes depends on the type:

* :class:`~dialer.errors.RetryableProviderError`: no call exists, trying later may work
  (HTTP 429, 5xx, connection refused);
* :class:`~dialer.errors.TerminalProviderError`: no call exists, trying again will not help
  (4xx; ``code`` carries the provider's error code as a string);
* :class:`~dialer.errors.AmbiguousProviderError`: the request went out and the call may exist
  (timeout or reset after sending): reconcile with :meth:`TelephonyProvider.find_calls`,
  never dial again blindly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from dialer.errors import ValidationError

#: Shortest ring time we ever ask for, in seconds (the US abandoned-call safe harbor).
MIN_RING_TIMEOUT_S = 15
#: Machine detection timeouts our API accepts, in seconds (Twilio itself stops at 59).
MACHINE_DETECTION_TIMEOUT_RANGE_S = (3, 60)
MACHINE_DETECTION_MODES = frozenset({"Enable", "DetectMessageEnd"})


class CallStatus(StrEnum):
    """Twilio's ``CallStatus`` vocabulary, which the port uses for every provider."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


#: Statuses of a call the provider still has up, in the order a call goes through them.
LIVE_STATUSES = (
    CallStatus.QUEUED,
    CallStatus.INITIATED,
    CallStatus.RINGING,
    CallStatus.IN_PROGRESS,
)

TERMINAL_STATUSES = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
        CallStatus.FAILED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequest:
    """Everything a provider needs to place one call for one attempt.

    The attempt and campaign ids are ours: the adapter puts them where its callbacks bring
    them back (Twilio: in the webhook URLs it builds). ``ring_timeout_s`` below
    :data:`MIN_RING_TIMEOUT_S` is raised to it rather than refused: ringing too briefly is the
    one setting that breaks the abandoned-call rules.
    """

    attempt_id: str
    campaign_id: str
    to: str
    from_: str
    ring_timeout_s: int = 30
    time_limit_s: int  # longest the call may last once answered
    machine_detection: str = "DetectMessageEnd"
    machine_detection_timeout_s: int = 30

    def __post_init__(self) -> None:
        if self.ring_timeout_s < MIN_RING_TIMEOUT_S:
            object.__setattr__(self, "ring_timeout_s", MIN_RING_TIMEOUT_S)
        if self.time_limit_s < 1:
            raise ValidationError("time_limit_s", "must be at least 1 second")
        if self.machine_detection not in MACHINE_DETECTION_MODES:
            modes = " or ".join(sorted(MACHINE_DETECTION_MODES))
            raise ValidationError("machine_detection", f"must be {modes}")
        low, high = MACHINE_DETECTION_TIMEOUT_RANGE_S
        if not low <= self.machine_detection_timeout_s <= high:
            raise ValidationError(
                "machine_detection_timeout_s", f"must be between {low} and {high} seconds"
            )


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """The provider accepted the call; ``provider_call_id`` is what its callbacks will name."""

    provider_call_id: str
    status: CallStatus


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The provider's own record of a call. Times are aware UTC datetimes when known."""

    provider_call_id: str
    status: CallStatus
    to: str
    from_: str
    answered_by: str | None = None
    duration_s: int | None = None  # talk time once answered; None until the call has ended
    created_at: datetime | None = None
    started_at: datetime | None = None  # None while queued at the provider
    ended_at: datetime | None = None


class CallerIdStatus(StrEnum):
    """What the provider says of a number we want to call from."""

    #: The account owns the number (Twilio: an IncomingPhoneNumber).
    OWNED = "owned"
    #: The account may present it as caller ID (Twilio: a verified OutgoingCallerId).
    VERIFIED = "verified"
    #: Neither: a call from it would be refused.
    UNKNOWN = "unknown"

    @property
    def may_call_from(self) -> bool:
        return self is not CallerIdStatus.UNKNOWN


@dataclass(frozen=True, slots=True)
class LiveCalls:
    """The account's calls the provider still has up, listed in bulk; ``requests`` is what
    the listing cost (pages)."""

    ids: frozenset[str]
    requests: int


class TelephonyProvider(Protocol):
    """What the dialer asks of a telephony provider. Call progress arrives as callbacks."""

    @property
    def name(self) -> str: ...

    def place_call(self, request: CallRequest) -> PlacedCall:
        """Ask the provider to dial; progress then arrives at the request's callback URLs."""
        ...

    def hang_up(self, provider_call_id: str) -> CallInfo | None:
        """End the call: cancel it if not answered yet, hang up if it is. A no-op once ended.

        Returns the provider's record of the call as its answer gave it (the caller ingests
        it: the call's end is known without waiting for its callback), or None when the
        answer carried none (the call had already ended).
        """
        ...

    def fetch(self, provider_call_id: str) -> CallInfo:
        """The provider's current record of the call (unknown ids: TerminalProviderError)."""
        ...

    def live_calls(self) -> LiveCalls:
        """Every call of the account that the provider still has up (queued, ringing or
        answered), in as few requests as its API allows: a call of ours missing from it has
        ended (or is ending) whatever its callbacks said. What it costs grows with the pages
        listed, not with the calls we have in flight."""
        ...

    def find_calls(self, to: str, from_: str, since: datetime) -> list[CallInfo]:
        """Calls from ``from_`` to ``to`` created at or after ``since``.

        Reconciles a dial whose outcome was ambiguous: pass the time the request was sent,
        less a margin for clock skew between us and the provider.
        """
        ...

    def caller_id_status(self, number: str) -> CallerIdStatus:
        """Whether the account may call from ``number`` (E.164): it owns the number, or has
        it verified as a caller ID. Asked when a tenant registers a caller number."""
        ...

    def close(self) -> None:
        """Release what the adapter holds (connections, threads); it is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class CallContext:
    """Everything the assistant needs about the call it is connected to: what a provider's
    call-control document (Twilio's TwiML) hands on when the call is answered."""

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
