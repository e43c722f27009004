"""Call health as values: abandoned calls, the abandon limit and its minimum sample, number
quarantine thresholds, the failure-rate pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.policy.attempt_state import Outcome
from dialer.policy.health import (
    AbandonTally,
    HealthLimits,
    NumberProblem,
    NumberTally,
    failed_at_carrier,
    is_abandoned,
    is_carrier_rejection,
    number_problem,
    over_abandon_limit,
    over_failure_limit,
)

ANSWER = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
LIMITS = HealthLimits()


def _after(seconds: float) -> datetime:
    return ANSWER + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("outcome", "answered_by", "stream_after_s", "abandoned"),
    [
        (Outcome.HUMAN, "human", 0.5, False),
        (Outcome.HUMAN, "human", 2.0, False),  # exactly 2 s: in time
        (Outcome.HUMAN, "human", 2.001, True),
        (Outcome.HUMAN, "human", None, True),  # never started
        (Outcome.HUMAN, None, None, True),  # no detection: a person, as far as we know
        (Outcome.HUMAN, "unknown", 5.0, True),
        (Outcome.VOICEMAIL, "machine_end_beep", None, False),  # a machine is not abandoned
        (Outcome.NO_ANSWER, None, None, False),
        (Outcome.BUSY, None, None, False),
    ],
)
def test_abandoned_is_a_person_left_waiting_over_2_seconds(
    outcome: Outcome, answered_by: str | None, stream_after_s: float | None, abandoned: bool
) -> None:
    started = None if stream_after_s is None else _after(stream_after_s)
    verdict = is_abandoned(outcome, answered_by, ANSWER, started, connect_s=2.0)
    assert verdict is abandoned


def test_no_answer_time_is_never_abandoned() -> None:
    assert not is_abandoned(Outcome.HUMAN, "human", None, None, connect_s=2.0)


def test_without_a_stream_to_wait_for_nobody_is_left_waiting() -> None:
    # No assistant stream configured: the answer says the opening message at once.
    assert not is_abandoned(Outcome.HUMAN, "human", ANSWER, None, connect_s=None)


@pytest.mark.parametrize(
    ("humans", "abandoned", "max_rate", "paused"),
    [
        (19, 19, 0.03, False),  # under the minimum sample: not judged, however bad
        (20, 0, 0.03, False),
        (20, 1, 0.03, True),  # 5% > 3%
        (100, 3, 0.03, False),  # exactly at the limit is allowed
        (100, 4, 0.03, True),
        (1000, 30, 0.03, False),
        (20, 1, 0.05, False),  # a campaign's own limit
        (20, 2, 0.05, True),
        (0, 0, 0.03, False),
    ],
)
def test_abandon_limit_with_its_minimum_sample(
    humans: int, abandoned: int, max_rate: float, paused: bool
) -> None:
    assert over_abandon_limit(AbandonTally(humans, abandoned), max_rate, LIMITS) is paused


def test_abandon_rate_is_none_before_anyone_answered() -> None:
    assert AbandonTally(0, 0).rate is None
    assert AbandonTally(40, 1).rate == 0.025


@pytest.mark.parametrize(
    ("dials", "answered", "rejected", "problem"),
    [
        (19, 0, 19, None),  # too few dials to judge rejections
        (20, 10, 6, NumberProblem.REJECTIONS),  # 30%: the threshold itself
        (20, 10, 5, None),
        (49, 0, 0, None),  # too few dials to judge the answer rate
        (50, 2, 0, NumberProblem.LOW_ANSWER_RATE),  # 4% < 5%
        (50, 3, 0, None),
        (100, 0, 40, NumberProblem.REJECTIONS),  # both: the rejections are named
    ],
)
def test_number_quarantine_thresholds(
    dials: int, answered: int, rejected: int, problem: NumberProblem | None
) -> None:
    assert number_problem(NumberTally(dials, answered, rejected), LIMITS) is problem


@pytest.mark.parametrize(
    ("code", "rejection"),
    [
        ("sip-608", True),
        ("sip-603", True),
        ("sip-607", True),
        ("32017", True),
        ("32018", True),
        ("sip-404", False),
        ("sip-486", False),
        ("21210", False),  # our request refused (caller ID not verified): not a carrier's
        (None, False),
        ("", False),
        ("sip-abc", False),
    ],
)
def test_carrier_rejections(code: str | None, rejection: bool) -> None:
    assert is_carrier_rejection(code) is rejection


@pytest.mark.parametrize(
    ("outcome", "code", "failed"),
    [
        (Outcome.FAILED, "sip-404", True),
        (Outcome.FAILED, None, True),
        (Outcome.BUSY, "sip-603", True),  # a decline reported as busy
        (Outcome.BUSY, None, False),
        (Outcome.NO_ANSWER, None, False),
        (Outcome.HUMAN, None, False),
    ],
)
def test_failed_at_the_carrier(outcome: Outcome, code: str | None, failed: bool) -> None:
    assert failed_at_carrier(outcome, code) is failed


@pytest.mark.parametrize(
    ("recent", "paused"),
    [
        ([True] * 19, False),  # not enough dials yet
        ([True] * 20, True),
        ([True] * 16 + [False] * 4, True),  # 80%
        ([True] * 15 + [False] * 5, False),
        ([False] * 4 + [True] * 16, True),
        ([True] * 16 + [False] * 4 + [False] * 10, True),  # only the latest 20 count
        ([], False),
    ],
)
def test_failure_rate_over_the_latest_dials(recent: list[bool], paused: bool) -> None:
    assert over_failure_limit(recent, LIMITS) is paused
