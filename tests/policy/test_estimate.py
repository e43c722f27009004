"""The completion estimate's simulation, as values: slots, pace, windows, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.policy.calling_hours import HoursSpec, WeeklyScheduleSpec, legal_hours_for
from dialer.policy.estimate import CallProfile, Cohort, Pace, estimate
from dialer.policy.legal_hours import LegalHours
from dialer.policy.retry import RetryPolicy
from dialer.policy.windows import AllOf, Between

NOON_NY = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # a Monday, 12:00 in New York
ALWAYS = AllOf((Between(None, None),))
_NEW_YORK_HOURS = legal_hours_for("+12125550100")
assert isinstance(_NEW_YORK_HOURS, LegalHours)
#: A New York number's legal hours (08:00-21:00 there), with no campaign window.
NEW_YORK = AllOf((Between(None, None), _NEW_YORK_HOURS))
ONCE = RetryPolicy.model_validate(
    {"max_attempts": 1, "backoff": {"kind": "fixed", "delay": "60s"}, "jitter": 0}
)
THRICE = RetryPolicy.model_validate(
    {"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "600s"}, "jitter": 0}
)
ANSWERED = CallProfile(answered_s=60.0, unanswered_s=30.0, answer_rate=1.0)
UNANSWERED = CallProfile(answered_s=60.0, unanswered_s=30.0, answer_rate=0.0)


@pytest.mark.parametrize(
    ("name", "count", "window", "pace", "profile", "retry", "seconds", "calls"),
    [
        # 30 calls of 60 s, 3 at a time: ten waves.
        ("slots", 30, ALWAYS, Pace(3, 100), ANSWERED, ONCE, 600, 30),
        # One start every 4 s holds 30 starts to 116 s, the last ends 60 s later.
        ("pace", 30, ALWAYS, Pace(100, 0.25), ANSWERED, ONCE, 176, 30),
        # Every call unanswered: 3 attempts, 600 s apart, each 30 s.
        ("retries", 10, ALWAYS, Pace(10, 100), UNANSWERED, THRICE, 3 * 30 + 2 * 600, 30),
        # 700 calls of a minute, one at a time from 12:00: nine hours to 21:00 (540 calls),
        # the other 160 from 08:00 the next day.
        ("legal hours", 700, NEW_YORK, Pace(1, 100), ANSWERED, ONCE, 20 * 3600 + 160 * 60, 700),
    ],
)
def test_the_simulated_completion(
    name: str,
    count: int,
    window: AllOf,
    pace: Pace,
    profile: CallProfile,
    retry: RetryPolicy,
    seconds: float,
    calls: float,
) -> None:
    result = estimate([Cohort(count, window, NOON_NY)], pace, profile, retry, NOON_NY)
    assert result.completes_at is not None
    # Within the event grid's drift: seconds on a short campaign, 0.2% on a long one.
    tolerance = timedelta(seconds=2 + seconds * 0.002)
    assert abs(result.completes_at - NOON_NY - timedelta(seconds=seconds)) <= tolerance
    assert result.calls == pytest.approx(calls)
    assert result.never_callable == 0


def test_recipients_due_later_start_then() -> None:
    later = NOON_NY + timedelta(hours=1)
    result = estimate([Cohort(3, ALWAYS, later)], Pace(3, 100), ANSWERED, ONCE, NOON_NY)
    assert result.completes_at == later + timedelta(seconds=60)


def test_a_window_that_never_opens_again_is_no_completion() -> None:
    over = AllOf((Between(None, NOON_NY - timedelta(days=1)),))
    result = estimate([Cohort(5, over, NOON_NY)], Pace(3, 100), ANSWERED, ONCE, NOON_NY)
    assert result.never_callable == 5
    assert result.calls == 0


def test_weekly_hours_skip_the_weekend() -> None:
    """Friday 16:30 in New York, hours 09:00-17:00 on weekdays: 60 one-minute calls one at a
    time do 30 on Friday and the rest on Monday from 09:00."""
    friday = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
    spec = WeeklyScheduleSpec(
        timezone="America/New_York",
        hours=(HoursSpec(days=("mon", "tue", "wed", "thu", "fri"), start="09:00", end="17:00"),),
    )
    hours = AllOf((Between(None, None), spec.to_window()))
    result = estimate([Cohort(60, hours, friday)], Pace(1, 100), ANSWERED, ONCE, friday)
    monday_nine = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    assert result.completes_at == monday_nine + timedelta(minutes=30)
