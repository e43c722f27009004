"""How a simulated call plays out, shared by the in-process simulator and the carrier server.

A :class:`CallPlan` is decided once, when the call is placed, from a seeded random generator:
the same seed and the same sequence of calls give the same outcomes and timings. Offsets are
in simulated seconds after the call leaves the provider's queue; the drivers turn them into
wall-clock or injected-clock times.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Literal

from dialer.errors import ValidationError
from dialer.policy.attempt_state import Outcome
from dialer.telephony.base import CallerIdStatus, CallStatus
from dialer.telephony.simulator.distributions import (
    Distribution,
    Exponential,
    Fixed,
    Uniform,
    parse_distribution,
)

#: Outcomes a simulated callee can produce (canceled comes from hanging up, never planned).
PLANNED_OUTCOMES = (
    Outcome.HUMAN,
    Outcome.VOICEMAIL,
    Outcome.BUSY,
    Outcome.NO_ANSWER,
    Outcome.FAILED,
)
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_MACHINE_END_VERDICTS = ("machine_end_beep", "machine_end_silence", "machine_end_other")
_FAILURE_SIP_CODES = (404, 480, 503)


@dataclass(frozen=True, slots=True)
class OutcomeWeights:
    """Relative weights of the planned outcomes; they need not sum to 1."""

    human: float = 0.35
    voicemail: float = 0.25
    busy: float = 0.10
    no_answer: float = 0.20
    failed: float = 0.10

    def __post_init__(self) -> None:
        values = list(self._by_outcome().values())
        if any(value < 0 for value in values) or sum(values) <= 0:
            raise ValidationError("weights", "must be non-negative with a positive sum")

    def choose(self, rng: random.Random) -> Outcome:
        weights = self._by_outcome()
        return rng.choices(PLANNED_OUTCOMES, weights=[weights[o] for o in PLANNED_OUTCOMES])[0]

    def share(self, outcome: Outcome) -> float:
        """The expected fraction of calls planned with ``outcome``."""
        weights = self._by_outcome()
        return weights.get(outcome, 0.0) / sum(weights.values())

    def _by_outcome(self) -> dict[Outcome, float]:
        return {
            Outcome.HUMAN: self.human,
            Outcome.VOICEMAIL: self.voicemail,
            Outcome.BUSY: self.busy,
            Outcome.NO_ANSWER: self.no_answer,
            Outcome.FAILED: self.failed,
        }

    @classmethod
    def parse(cls, text: str) -> OutcomeWeights:
        """``human=5,voicemail=2,busy=1``: outcomes not named weigh 0."""
        values: dict[str, float] = dict.fromkeys((o.value for o in PLANNED_OUTCOMES), 0.0)
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, number = part.partition("=")
            if name.strip() not in values:
                raise ValidationError("weights", f"unknown outcome {name.strip()!r}")
            try:
                values[name.strip()] = float(number)
            except ValueError:
                raise ValidationError("weights", f"not a number: {part!r}") from None
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SimulationProfile:
    """The callees a simulation dials: outcome mix and duration distributions (seconds)."""

    weights: OutcomeWeights = field(default_factory=OutcomeWeights)
    setup_s: Distribution = field(default_factory=lambda: Fixed(1.0))  # dial until ringing
    ring_s: Distribution = field(default_factory=lambda: Uniform(3.0, 20.0))  # until answered
    talk_s: Distribution = field(default_factory=lambda: Exponential(60.0))  # a person talking
    amd_s: Distribution = field(default_factory=lambda: Uniform(2.0, 4.0))  # detection time
    greeting_s: Distribution = field(default_factory=lambda: Uniform(5.0, 15.0))  # until beep
    message_s: Distribution = field(default_factory=lambda: Uniform(10.0, 30.0))  # after it
    reject_s: Distribution = field(default_factory=lambda: Uniform(1.0, 4.0))  # busy/failed
    #: From a person's answer until the assistant's media stream starts.
    stream_s: Distribution = field(default_factory=lambda: Fixed(0.5))
    #: Share of calls answered by a person whose stream never starts (``stream-error``).
    stream_failures: float = 0.0
    #: Caller numbers carriers block: every call from one fails with SIP 608 (Rejected).
    blocked: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0.0 <= self.stream_failures <= 1.0:
            raise ValidationError("stream_failures", "must be a share between 0 and 1")


#: Fields of :meth:`SimulationProfile.parse` and the profile attribute each sets.
_PROFILE_FIELDS = {
    "setup": "setup_s",
    "ring": "ring_s",
    "talk": "talk_s",
    "amd": "amd_s",
    "greeting": "greeting_s",
    "message": "message_s",
    "reject": "reject_s",
    "stream": "stream_s",
}
#: The SIP response of a call a carrier blocks for its calling number (RFC 8688).
BLOCKED_SIP_CODE = 608


def parse_profile(text: str) -> SimulationProfile:
    """``weights=human=1;setup=fixed:0;ring=fixed:0;talk=fixed:2``: fields not named keep
    their defaults. Durations as :func:`parse_distribution`, weights as
    :meth:`OutcomeWeights.parse`; ``stream_failures=0.2`` (a share) and
    ``blocked=+12125550100|+12125550101`` (numbers whose calls carriers refuse with 608)."""
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, spec = part.partition("=")
        name = name.strip()
        if name == "weights":
            values["weights"] = OutcomeWeights.parse(spec)
        elif name == "stream_failures":
            try:
                values["stream_failures"] = float(spec)
            except ValueError:
                raise ValidationError("profile", f"not a number: {part!r}") from None
        elif name == "blocked":
            values["blocked"] = frozenset(n.strip() for n in spec.split("|") if n.strip())
        elif name in _PROFILE_FIELDS:
            values[_PROFILE_FIELDS[name]] = parse_distribution(spec.strip())
        else:
            known = ", ".join(["weights", *_PROFILE_FIELDS, "stream_failures", "blocked"])
            raise ValidationError("profile", f"unknown field {name!r}; use {known}")
    return SimulationProfile(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One step of a call: a status change, the answering-machine verdict, or the media
    stream's start (or failure)."""

    offset_s: float
    kind: Literal["status", "amd", "stream"]
    status: CallStatus | None = None  # status steps
    answered_by: str | None = None  # amd steps
    sip_response_code: int | None = None  # terminal steps
    duration_s: int | None = None  # terminal steps: talk time, 0 if never answered
    stream_event: str | None = None  # stream steps: stream-started or stream-error


@dataclass(frozen=True, slots=True)
class CallPlan:
    outcome: Outcome
    events: tuple[PlannedEvent, ...]


def plan_call(
    profile: SimulationProfile,
    rng: random.Random,
    *,
    ring_timeout_s: float,
    time_limit_s: float,
    machine_detection: str | None = "DetectMessageEnd",
    machine_detection_timeout_s: float = 30.0,
    from_: str | None = None,
    stream_rng: random.Random | None = None,
) -> CallPlan:
    """Decide a call's outcome and timeline, drawing from ``rng`` (and the media stream's
    start from ``stream_rng``, so turning stream failures on keeps every call's outcome; a
    fixed stream delay and no failures draw nothing). A call from a ``blocked`` number is
    refused with SIP 608."""
    start = PlannedEvent(0.0, "status", CallStatus.INITIATED)
    if from_ is not None and from_ in profile.blocked:
        end = PlannedEvent(
            profile.reject_s.sample(rng), "status", CallStatus.FAILED, None, BLOCKED_SIP_CODE, 0
        )
        return CallPlan(Outcome.FAILED, (start, end))
    outcome = profile.weights.choose(rng)
    if outcome in (Outcome.BUSY, Outcome.FAILED):
        at = profile.reject_s.sample(rng)
        status, sip = (
            (CallStatus.BUSY, 486)
            if outcome is Outcome.BUSY
            else (CallStatus.FAILED, rng.choice(_FAILURE_SIP_CODES))
        )
        return CallPlan(outcome, (start, PlannedEvent(at, "status", status, None, sip, 0)))
    ringing_at = profile.setup_s.sample(rng)
    ringing = PlannedEvent(ringing_at, "status", CallStatus.RINGING)
    if outcome is Outcome.NO_ANSWER:
        end = PlannedEvent(
            ringing_at + ring_timeout_s, "status", CallStatus.NO_ANSWER, None, 487, 0
        )
        return CallPlan(outcome, (start, ringing, end))
    # Answered before the ring timeout runs out, or it would be a no-answer.
    answered_at = ringing_at + min(profile.ring_s.sample(rng), max(ring_timeout_s - 1.0, 0.0))
    # detect_s: answer to verdict; after_s: answer to hang-up (a machine takes the message).
    if outcome is Outcome.HUMAN:
        detect_s, verdict = profile.amd_s.sample(rng), "human"
        after_s = profile.talk_s.sample(rng)
    elif machine_detection == "Enable":
        detect_s, verdict = profile.amd_s.sample(rng), "machine_start"
        after_s = profile.greeting_s.sample(rng) + profile.message_s.sample(rng)
    else:  # DetectMessageEnd: the verdict comes at the end of the greeting
        detect_s, verdict = profile.greeting_s.sample(rng), rng.choice(_MACHINE_END_VERDICTS)
        after_s = detect_s + profile.message_s.sample(rng)
    if detect_s > machine_detection_timeout_s:
        detect_s, verdict = machine_detection_timeout_s, "unknown"
    talk_s = min(float(time_limit_s), max(after_s, detect_s + 1.0))
    steps = [start, ringing, PlannedEvent(answered_at, "status", CallStatus.IN_PROGRESS)]
    if machine_detection:
        steps.append(PlannedEvent(answered_at + min(detect_s, talk_s), "amd", answered_by=verdict))
    if outcome is Outcome.HUMAN:
        steps.append(_stream_step(profile, stream_rng or rng, answered_at))
    steps.append(
        PlannedEvent(
            answered_at + talk_s,
            "status",
            CallStatus.COMPLETED,
            sip_response_code=200,
            duration_s=max(1, math.ceil(talk_s)),
        )
    )
    # In time order: the carrier plays the steps in sequence (a late stream start comes after
    # the end, and is never reported: the call was abandoned).
    return CallPlan(outcome, tuple(sorted(steps, key=lambda step: step.offset_s)))


def _stream_step(
    profile: SimulationProfile, rng: random.Random, answered_at: float
) -> PlannedEvent:
    """The assistant's stream starting after a person answered, or failing to."""
    failed = profile.stream_failures > 0 and rng.random() < profile.stream_failures
    return PlannedEvent(
        answered_at + profile.stream_s.sample(rng),
        "stream",
        stream_event="stream-error" if failed else "stream-started",
    )


def caller_id_status(number: str, owned: frozenset[str] | None) -> CallerIdStatus:
    """A simulated account's answer: it owns ``owned``, or any well-formed number (None)."""
    if not _E164.match(number):
        return CallerIdStatus.UNKNOWN
    if owned is None or number in owned:
        return CallerIdStatus.OWNED
    return CallerIdStatus.UNKNOWN


def number_problem(
    to: str, from_: str, owned: frozenset[str] | None = None
) -> tuple[int, str] | None:
    """Twilio's error code and message for a missing or malformed number, or a ``From`` the
    account may not call from (``owned``: its numbers; None = any), else None."""
    if not to:
        return 21201, "No 'To' number is specified"
    if not _E164.match(to):
        return 21211, f"Invalid 'To' Phone Number: {to}"
    if not from_:
        return 21213, "No 'From' number is specified"
    if not _E164.match(from_):
        return 21212, f"Invalid 'From' Phone Number: {from_}"
    if owned is not None and from_ not in owned:
        return 21210, f"The source phone number provided, {from_}, is not yet verified"
    return None


def new_call_sid() -> str:
    """A fresh Twilio-shaped call id. Random, not seeded: ids must never repeat across runs."""
    return "CA" + uuid.uuid4().hex
