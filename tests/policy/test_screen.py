"""The screen, as a table: facts in, one decision out, precedence as documented."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.calling_hours import WeeklyScheduleSpec, campaign_window
from dialer.policy.campaign_state import CampaignStatus, EndedReason
from dialer.policy.frequency import ContactHistory, FrequencyCaps
from dialer.policy.screen import (
    CALL_NOW,
    CampaignFacts,
    Decision,
    Deferred,
    RecipientFacts,
    ScreenReason,
    Terminal,
    screen,
    screen_campaign,
)

NOON_NY = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # a Monday
END = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
WEEKDAYS_9_TO_13 = WeeklyScheduleSpec.model_validate(
    {"timezone": "America/New_York", "hours": [{"start": "09:00", "end": "13:00"}]}
)
RUNNING = CampaignFacts(CampaignStatus.RUNNING, None, campaign_window(None, END, None), END)
WEEKLY = replace(RUNNING, window=campaign_window(None, None, WEEKDAYS_9_TO_13), schedule_end=None)
IN_NY = RecipientFacts("+12125551000", None, suppressed=False)
SATELLITE = RecipientFacts("+870301234567", None, suppressed=False)
TOKYO = RecipientFacts("+81312345678", None, suppressed=False)

CONSENTING = replace(RUNNING, require_consent=True)
CAPPED = replace(RUNNING, caps=FrequencyCaps(attempts_per_day=2))
HOUR_AGO = NOON_NY - timedelta(hours=1)

S, R = RecipientStatus, ScreenReason
TABLE: list[tuple[str, RecipientFacts, CampaignFacts, datetime, Decision]] = [
    ("callable", IN_NY, RUNNING, NOON_NY, CALL_NOW),
    (
        "suppressed",
        replace(IN_NY, suppressed=True),
        RUNNING,
        NOON_NY,
        Terminal(S.SUPPRESSED, R.SUPPRESSED),
    ),
    ("no zone", SATELLITE, RUNNING, NOON_NY, Terminal(S.SKIPPED, R.UNKNOWN_TIME_ZONE)),
    ("explicit zone", replace(SATELLITE, time_zone="America/New_York"), RUNNING, NOON_NY, CALL_NOW),
    (
        "night in Tokyo",
        TOKYO,
        replace(RUNNING, window=campaign_window(None, None, None), schedule_end=None),
        NOON_NY,
        Deferred(datetime(2026, 11, 23, 23, 0, tzinfo=UTC), R.OUTSIDE_LEGAL_HOURS),
    ),
    (
        "legal hours end after the schedule",
        TOKYO,
        RUNNING,
        NOON_NY,
        Terminal(S.SKIPPED, R.NO_WINDOW_LEFT),
    ),
    (
        "weekly hours over for the day",
        IN_NY,
        WEEKLY,
        datetime(2026, 11, 23, 19, 0, tzinfo=UTC),
        Deferred(datetime(2026, 11, 24, 14, 0, tzinfo=UTC), R.OUTSIDE_CAMPAIGN_WINDOW),
    ),
    ("schedule over", IN_NY, RUNNING, END, Terminal(S.SKIPPED, R.WINDOW_CLOSED)),
    (
        "no weekly hours left before the schedule ends: not over until it ends",
        IN_NY,
        replace(
            WEEKLY,
            window=campaign_window(None, END + timedelta(hours=2), WEEKDAYS_9_TO_13),
            schedule_end=END + timedelta(hours=2),
        ),
        datetime(2026, 11, 23, 19, 0, tzinfo=UTC),
        Deferred(None, R.OUTSIDE_CAMPAIGN_WINDOW),
    ),
    (
        "paused",
        IN_NY,
        replace(RUNNING, status=CampaignStatus.PAUSED),
        NOON_NY,
        Deferred(None, R.CAMPAIGN_NOT_RUNNING),
    ),
    (
        "stopped",
        IN_NY,
        replace(
            RUNNING,
            status=CampaignStatus.COMPLETED,
            ended_reason=EndedReason.IN_PROGRESS_ENDED_BY_USER,
        ),
        NOON_NY,
        Terminal(S.CANCELED, R.CAMPAIGN_STOPPED),
    ),
    (
        "window closed",
        IN_NY,
        replace(RUNNING, status=CampaignStatus.COMPLETED, ended_reason=EndedReason.WINDOW_CLOSED),
        NOON_NY,
        Terminal(S.SKIPPED, R.WINDOW_CLOSED),
    ),
    # Precedence: the campaign first, then the number, then the hours.
    (
        "paused beats suppressed",
        replace(IN_NY, suppressed=True),
        replace(RUNNING, status=CampaignStatus.PAUSED),
        NOON_NY,
        Deferred(None, R.CAMPAIGN_NOT_RUNNING),
    ),
    (
        "suppressed beats no zone",
        replace(SATELLITE, suppressed=True),
        RUNNING,
        NOON_NY,
        Terminal(S.SUPPRESSED, R.SUPPRESSED),
    ),
    # Consent, when the campaign requires it: after the do-not-call list, before the hours.
    ("consent required, none", IN_NY, CONSENTING, NOON_NY, Terminal(S.SKIPPED, R.NO_CONSENT)),
    ("consent required, given", replace(IN_NY, has_consent=True), CONSENTING, NOON_NY, CALL_NOW),
    ("consent not required", IN_NY, RUNNING, NOON_NY, CALL_NOW),
    (
        "suppressed beats no consent",
        replace(IN_NY, suppressed=True),
        CONSENTING,
        NOON_NY,
        Terminal(S.SUPPRESSED, R.SUPPRESSED),
    ),
    ("no consent beats no zone", SATELLITE, CONSENTING, NOON_NY, Terminal(S.SKIPPED, R.NO_CONSENT)),
    # Frequency caps: last, and never an end.
    (
        "capped for the day",
        replace(IN_NY, contacts=ContactHistory((HOUR_AGO, HOUR_AGO - timedelta(hours=2)))),
        CAPPED,
        NOON_NY,
        Deferred(HOUR_AGO - timedelta(hours=2) + timedelta(days=1), R.FREQUENCY_CAP_24H),
    ),
    (
        "the same contacts without caps",
        replace(IN_NY, contacts=ContactHistory((HOUR_AGO, HOUR_AGO - timedelta(hours=2)))),
        RUNNING,
        NOON_NY,
        CALL_NOW,
    ),
    (
        "outside legal hours waits for the hours first, capped or not",
        replace(TOKYO, contacts=ContactHistory((HOUR_AGO, HOUR_AGO))),
        replace(CAPPED, window=campaign_window(None, None, None), schedule_end=None),
        NOON_NY,
        Deferred(datetime(2026, 11, 23, 23, 0, tzinfo=UTC), R.OUTSIDE_LEGAL_HOURS),
    ),
    (
        "no consent beats a cap",
        replace(IN_NY, contacts=ContactHistory((HOUR_AGO, HOUR_AGO))),
        replace(CAPPED, require_consent=True),
        NOON_NY,
        Terminal(S.SKIPPED, R.NO_CONSENT),
    ),
]


@pytest.mark.parametrize(
    ("recipient", "campaign", "now", "decision"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_screen(
    recipient: RecipientFacts, campaign: CampaignFacts, now: datetime, decision: Decision
) -> None:
    assert screen(recipient, campaign, now) == decision


def test_a_campaign_level_decision_needs_no_recipient() -> None:
    assert screen_campaign(RUNNING, NOON_NY) == CALL_NOW
    paused = replace(RUNNING, status=CampaignStatus.PAUSED)
    assert screen_campaign(paused, NOON_NY) == Deferred(None, R.CAMPAIGN_NOT_RUNNING)
