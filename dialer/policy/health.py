"""Call health, as values: abandoned calls, caller numbers carriers reject, campaigns whose
calls fail at the carrier.

Why these rules (US TSR 16 CFR 310.4(b)(4); FCC 47 CFR 64.1200(a)(7)):

* A call is **abandoned** when a person answers and is not connected to a live agent (here:
  the assistant's media stream) within 2 seconds of their greeting. Regulators allow at most
  3% of the calls answered by a person, measured per campaign over 30 days. A rate over a
  handful of calls says nothing (one abandoned call out of 5 is 20%), so a campaign is judged
  only once it has a minimum number of calls answered by a person in the window.
* Carriers answer calls from numbers their analytics flag as spam with SIP 603 (Decline),
  607 (Unwanted) or 608 (Rejected, RFC 8688), and Twilio reports its own carrier blocks as
  errors 32017 (blocked because of the calling number) and 32018 (poor reputation of the
  calling number). A number collecting those, or whose calls nobody answers any more, is
  burnt: calling on from it wastes the list and deepens the label. It is quarantined.
* A campaign whose recent dials nearly all fail before anyone answers is misconfigured or
  blocked everywhere: it pauses itself instead of burning every number it has.

Every function here is pure; the clock and the tallies are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from dialer.policy.attempt_state import Outcome
from dialer.telephony.events import MACHINE_ANSWERS

if TYPE_CHECKING:
    from dialer.settings import Settings

#: SIP responses a carrier gives a call it refuses because of the calling number.
REJECTION_SIP_CODES = frozenset({603, 607, 608})
#: Twilio error codes of calls a carrier blocked because of the calling number.
CARRIER_BLOCK_ERRORS = frozenset({"32017", "32018"})
#: Seconds a person may wait for the assistant after answering (the regulators' 2 s).
DEFAULT_STREAM_CONNECT_S = 2.0
#: Outcomes of a call nobody answered because it never got through the carrier.
_FAILED_AT_CARRIER = frozenset({Outcome.FAILED})


class NumberProblem(StrEnum):
    """Why a caller number was quarantined (``phone_numbers.quarantine_reason``)."""

    REJECTIONS = "number.quarantined.carrier-rejections"
    LOW_ANSWER_RATE = "number.quarantined.low-answer-rate"


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """The thresholds (settings ``DIALER_ABANDON_*``, ``DIALER_NUMBER_*``,
    ``DIALER_FAILURE_*``)."""

    #: A person must hear the assistant within this many seconds of answering; None when
    #: no assistant stream is connected (the answer says the opening message at once, the
    #: prerecorded message the rules allow): no call is then abandoned.
    stream_connect_s: float | None = DEFAULT_STREAM_CONNECT_S
    #: The answer says a campaign's opening message before it connects the stream (the
    #: opt-out key's ``<Gather>``): the person hears the dialer at once, and a call of such a
    #: campaign is abandoned only if its stream never starts.
    greets_first: bool = False
    #: Days of a campaign's calls its abandon rate is measured over.
    abandon_window_days: int = 30
    #: Calls answered by a person in the window before the rate is judged at all.
    abandon_min_humans: int = 20
    #: Hours of a number's calls its health is measured over.
    number_window_h: int = 24
    #: Share of a number's dials refused by carriers that quarantines it...
    number_reject_share: float = 0.3
    #: ...once it has this many dials in the window.
    number_reject_min_dials: int = 20
    #: Share of a number's dials answered below which it is quarantined...
    number_min_answer_rate: float = 0.05
    #: ...once it has this many dials in the window.
    number_answer_min_dials: int = 50
    #: The campaign's most recent dials looked at for its failure rate...
    failure_last_dials: int = 20
    #: ...and the share of them failed at the carrier that pauses it.
    failure_share: float = 0.8


def limits_from(settings: Settings) -> HealthLimits:
    """The thresholds ``settings`` give (the abandon window is the regulators' 30 days)."""
    return HealthLimits(
        stream_connect_s=settings.abandon_connect_s,
        greets_first=bool(settings.opt_out_digit) and settings.assistant_stream_url is not None,
        abandon_min_humans=settings.abandon_min_human_calls,
        number_window_h=settings.number_health_window_h,
        number_reject_share=settings.number_reject_share,
        number_reject_min_dials=settings.number_reject_min_dials,
        number_min_answer_rate=settings.number_min_answer_rate,
        number_answer_min_dials=settings.number_answer_min_dials,
        failure_last_dials=settings.failure_pause_dials,
        failure_share=settings.failure_pause_share,
    )


def is_carrier_rejection(error_code: str | None) -> bool:
    """Whether an ended attempt's ``error_code`` (``sip-608``, ``32017``...) says a carrier
    refused the call because of the number it came from."""
    if not error_code:
        return False
    if error_code in CARRIER_BLOCK_ERRORS:
        return True
    sip = error_code.removeprefix("sip-")
    return sip != error_code and sip.isdigit() and int(sip) in REJECTION_SIP_CODES


def answered_by_person(outcome: Outcome, answered_by: str | None) -> bool:
    """Answered, and not by a machine: AMD said human, or nothing (no detection, unknown)."""
    return outcome is Outcome.HUMAN and answered_by not in MACHINE_ANSWERS


def is_abandoned(
    outcome: Outcome,
    answered_by: str | None,
    answered_at: datetime | None,
    stream_started_at: datetime | None,
    *,
    connect_s: float | None,
) -> bool:
    """A person answered and the assistant's stream did not start within ``connect_s`` of
    the answer (or never). Without an answer time nobody answered: not abandoned. With no
    stream to wait for (``connect_s`` None), nobody is left waiting."""
    if connect_s is None:
        return False
    if not answered_by_person(outcome, answered_by) or answered_at is None:
        return False
    if stream_started_at is None:
        return True
    return stream_started_at - answered_at > timedelta(seconds=connect_s)


@dataclass(frozen=True, slots=True)
class AbandonTally:
    """A campaign's calls answered by a person over the window, and how many were abandoned."""

    humans: int
    abandoned: int

    @property
    def rate(self) -> float | None:
        """Abandoned over answered by a person; None before any person answered."""
        return None if self.humans == 0 else self.abandoned / self.humans


def over_abandon_limit(tally: AbandonTally, max_rate: float, limits: HealthLimits) -> bool:
    """Whether the campaign must pause: enough calls to judge, and the rate above its limit."""
    if tally.humans < limits.abandon_min_humans or tally.rate is None:
        return False
    return tally.rate > max_rate


@dataclass(frozen=True, slots=True)
class NumberTally:
    """A caller number's dials over the window: answered (by anyone), refused by carriers."""

    dials: int
    answered: int
    rejected: int


def number_problem(tally: NumberTally, limits: HealthLimits) -> NumberProblem | None:
    """Why the number must be quarantined, or None while it is healthy (or too little used
    to tell)."""
    if (
        tally.dials >= limits.number_reject_min_dials
        and tally.rejected / tally.dials >= limits.number_reject_share
    ):
        return NumberProblem.REJECTIONS
    if (
        tally.dials >= limits.number_answer_min_dials
        and tally.answered / tally.dials < limits.number_min_answer_rate
    ):
        return NumberProblem.LOW_ANSWER_RATE
    return None


def failed_at_carrier(outcome: Outcome, error_code: str | None) -> bool:
    """A dial that ended before anyone answered because the network refused it."""
    return outcome in _FAILED_AT_CARRIER or is_carrier_rejection(error_code)


def over_failure_limit(recent: Sequence[bool], limits: HealthLimits) -> bool:
    """``recent``: whether each of the campaign's latest dials failed at the carrier. True
    when there are ``failure_last_dials`` of them and the failed share reaches the limit."""
    if len(recent) < limits.failure_last_dials or not recent:
        return False
    window = recent[: limits.failure_last_dials]
    return sum(window) / len(window) >= limits.failure_share


def day_bucket(moment: datetime) -> datetime:
    """The start of the UTC day ``moment`` falls in (a campaign's abandon tallies)."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def hour_bucket(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in (a number's health tallies)."""
    return moment.replace(minute=0, second=0, microsecond=0)
