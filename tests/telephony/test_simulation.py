from __future__ import annotations

import random

import pytest

from dialer.errors import ValidationError
from dialer.policy.attempt_state import Outcome
from dialer.telephony.base import CallRequest, CallStatus
from dialer.telephony.simulator.distributions import Exponential, Fixed, Uniform, parse_distribution
from dialer.telephony.simulator.plan import (
    CallPlan,
    OutcomeWeights,
    SimulationProfile,
    number_problem,
    plan_call,
)
from tests.carrier.support import only


def _plan(
    outcome: str,
    *,
    ring_s: float = 2.0,
    talk_s: float = 5.0,
    ring_timeout_s: int = 30,
    time_limit_s: int = 3600,
    machine_detection: str = "DetectMessageEnd",
    machine_detection_timeout_s: int = 30,
) -> CallPlan:
    return plan_call(
        only(outcome, ring_s=ring_s, talk_s=talk_s),
        random.Random(0),
        ring_timeout_s=ring_timeout_s,
        time_limit_s=time_limit_s,
        machine_detection=machine_detection,
        machine_detection_timeout_s=machine_detection_timeout_s,
    )


def _statuses(plan: CallPlan) -> list[CallStatus | None]:
    return [e.status for e in plan.events if e.kind == "status"]


def test_human_call_timeline() -> None:
    plan = _plan("human", ring_s=2.0, talk_s=5.0)
    assert plan.outcome is Outcome.HUMAN
    assert _statuses(plan) == [
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.IN_PROGRESS,
        CallStatus.COMPLETED,
    ]
    offsets = [e.offset_s for e in plan.events]
    assert offsets == sorted(offsets)
    amd = next(e for e in plan.events if e.kind == "amd")
    assert amd.answered_by == "human"
    assert amd.offset_s == pytest.approx(1.0 + 2.0 + 2.0)  # setup + ring + detection
    end = plan.events[-1]
    assert end.offset_s == pytest.approx(1.0 + 2.0 + 5.0)
    assert (end.duration_s, end.sip_response_code) == (5, 200)


@pytest.mark.parametrize(
    ("mode", "verdicts"),
    [
        ("DetectMessageEnd", {"machine_end_beep", "machine_end_silence", "machine_end_other"}),
        ("Enable", {"machine_start"}),
    ],
)
def test_voicemail_verdict_depends_on_the_detection_mode(mode: str, verdicts: set[str]) -> None:
    amd = next(e for e in _plan("voicemail", machine_detection=mode).events if e.kind == "amd")
    assert amd.answered_by in verdicts


def test_detection_slower_than_its_timeout_says_unknown() -> None:
    plan = _plan("voicemail", machine_detection_timeout_s=2)  # the greeting lasts 3 s
    amd = next(e for e in plan.events if e.kind == "amd")
    assert amd.answered_by == "unknown"
    assert amd.offset_s == pytest.approx(1.0 + 2.0 + 2.0)


def test_no_answer_rings_for_the_whole_ring_timeout() -> None:
    plan = _plan("no_answer", ring_timeout_s=25)
    assert _statuses(plan)[-1] is CallStatus.NO_ANSWER
    assert plan.events[-1].offset_s == pytest.approx(1.0 + 25)
    assert plan.events[-1].duration_s == 0
    assert all(e.kind == "status" for e in plan.events)  # nobody answered: no verdict


@pytest.mark.parametrize(
    ("outcome", "status"), [("busy", CallStatus.BUSY), ("failed", CallStatus.FAILED)]
)
def test_rejected_calls_never_ring(outcome: str, status: CallStatus) -> None:
    assert _statuses(_plan(outcome)) == [CallStatus.INITIATED, status]


def test_answers_come_before_the_ring_timeout() -> None:
    plan = _plan("human", ring_s=100.0, ring_timeout_s=20)
    answered = next(e for e in plan.events if e.status is CallStatus.IN_PROGRESS)
    assert answered.offset_s < 1.0 + 20


def test_talk_is_capped_by_the_time_limit() -> None:
    plan = _plan("human", talk_s=500.0, time_limit_s=60)
    assert plan.events[-1].duration_s == 60


def test_same_seed_same_plans() -> None:
    profile = SimulationProfile(ring_s=Uniform(1, 9), talk_s=Exponential(30))

    def plans(seed: int) -> list[object]:
        rng = random.Random(seed)
        return [plan_call(profile, rng, ring_timeout_s=30, time_limit_s=600) for _ in range(20)]

    assert plans(5) == plans(5)
    assert plans(5) != plans(6)


def test_distributions() -> None:
    rng = random.Random(1)
    assert Fixed(3).sample(rng) == 3
    assert all(2 <= Uniform(2, 8).sample(rng) <= 8 for _ in range(100))
    mean = sum(Exponential(10).sample(rng) for _ in range(4000)) / 4000
    assert 9 < mean < 11


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed:3", Fixed(3)),
        ("uniform:2,8", Uniform(2, 8)),
        ("exponential:45", Exponential(45)),
        ("exp:45", Exponential(45)),
    ],
)
def test_parse_distribution(text: str, expected: object) -> None:
    assert parse_distribution(text) == expected
    assert parse_distribution(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["normal:3", "fixed:", "uniform:3", "uniform:8,2", "exp:0", "fixed:x"]
)
def test_bad_distributions_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_distribution(text)


def test_outcome_weights() -> None:
    weights = OutcomeWeights.parse("human=3, busy=1")
    assert weights.share(Outcome.HUMAN) == 0.75
    assert weights.share(Outcome.VOICEMAIL) == 0
    with pytest.raises(ValidationError):
        OutcomeWeights.parse("humans=1")
    with pytest.raises(ValidationError):
        OutcomeWeights(0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("", "+15550000001", 21201),
        ("555-1234", "+15550000001", 21211),
        ("+15551230001", "", 21213),
        ("+15551230001", "+0123", 21212),
        ("+15551230001", "+15550000001", None),
    ],
)
def test_number_problems(to: str, from_: str, code: int | None) -> None:
    problem = number_problem(to, from_)
    assert (problem[0] if problem else None) == code


def _request(**overrides: object) -> CallRequest:
    fields: dict[str, object] = {
        "attempt_id": "a1",
        "campaign_id": "c1",
        "to": "+15551230001",
        "from_": "+15550000001",
        "time_limit_s": 600,
    }
    fields.update(overrides)
    return CallRequest(**fields)  # type: ignore[arg-type]


def test_call_request_rings_at_least_15_seconds() -> None:
    assert _request(ring_timeout_s=5).ring_timeout_s == 15
    assert _request(ring_timeout_s=40).ring_timeout_s == 40
    assert _request().ring_timeout_s == 30


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("machine_detection_timeout_s", 2),
        ("machine_detection_timeout_s", 61),
        ("machine_detection", "Disabled"),
        ("time_limit_s", 0),
    ],
)
def test_call_request_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        _request(**{field: value})
    assert caught.value.field == field


def test_call_request_accepts_60_seconds_of_detection() -> None:
    assert _request(machine_detection_timeout_s=60).machine_detection_timeout_s == 60
