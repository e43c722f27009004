"""Frequency caps as a table: caps, a number's contacts and the time in; whether a new call
waits, until when and why, out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.policy.frequency import (
    DEFAULT_CAPS,
    NO_CAPS,
    NO_CONTACT,
    CapReason,
    ContactHistory,
    FrequencyCaps,
    Held,
    held_until,
    in_force,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)


def ago(*offsets: timedelta) -> tuple[datetime, ...]:
    return tuple(NOW - offset for offset in offsets)


DAILY_3 = FrequencyCaps(attempts_per_day=3)
WEEKLY_2 = FrequencyCaps(attempts_per_week=2)
QUIET_2 = FrequencyCaps(quiet_days_after_answer=2)

TABLE: list[tuple[str, FrequencyCaps, ContactHistory, Held | None]] = [
    ("never called", DEFAULT_CAPS, NO_CONTACT, None),
    ("no caps", NO_CAPS, ContactHistory(ago(H, H, H, H)), None),
    ("under the daily cap", DAILY_3, ContactHistory(ago(1 * H, 2 * H)), None),
    (
        "at the daily cap: the oldest of the three ages out",
        DAILY_3,
        ContactHistory(ago(1 * H, 5 * H, 20 * H)),
        Held(NOW + 4 * H, CapReason.PER_DAY),
    ),
    (
        "over the daily cap (calls before it was lowered): the third newest ages out",
        FrequencyCaps(attempts_per_day=2),
        ContactHistory(ago(1 * H, 5 * H, 20 * H)),
        Held(NOW + 19 * H, CapReason.PER_DAY),
    ),
    ("a call 24 hours ago no longer counts", DAILY_3, ContactHistory(ago(H, 2 * H, D)), None),
    (
        "contacts in any order",
        DAILY_3,
        ContactHistory(ago(20 * H, 1 * H, 5 * H)),
        Held(NOW + 4 * H, CapReason.PER_DAY),
    ),
    (
        "at the weekly cap",
        WEEKLY_2,
        ContactHistory(ago(2 * D, 6 * D)),
        Held(NOW + D, CapReason.PER_WEEK),
    ),
    ("a call a week ago no longer counts", WEEKLY_2, ContactHistory(ago(2 * D, 7 * D)), None),
    (
        "both caps: the one freeing last wins",
        FrequencyCaps(attempts_per_day=1, attempts_per_week=2),
        ContactHistory(ago(1 * H, 3 * D)),
        Held(NOW + 4 * D, CapReason.PER_WEEK),
    ),
    (
        "answered yesterday, quiet for two days",
        QUIET_2,
        ContactHistory(ago(D), last_human_answer=NOW - D),
        Held(NOW + D, CapReason.RECENTLY_ANSWERED),
    ),
    (
        "answered three days ago, quiet for two",
        QUIET_2,
        ContactHistory(ago(3 * D), last_human_answer=NOW - 3 * D),
        None,
    ),
    (
        "answered, quiet days off",
        DEFAULT_CAPS,
        ContactHistory(ago(H), last_human_answer=NOW - H),
        None,
    ),
    (
        "quiet days outlast the daily cap",
        FrequencyCaps(attempts_per_day=1, quiet_days_after_answer=2),
        ContactHistory(ago(H), last_human_answer=NOW - H),
        Held(NOW - H + 2 * D, CapReason.RECENTLY_ANSWERED),
    ),
]


@pytest.mark.parametrize(
    ("caps", "history", "held"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_held_until(caps: FrequencyCaps, history: ContactHistory, held: Held | None) -> None:
    assert held_until(caps, history, NOW) == held


def test_once_held_the_call_may_go_at_the_instant_given() -> None:
    """Never stuck: at the instant a cap frees, the same history lets the call go."""
    for _, caps, history, held in TABLE:
        if held is not None:
            assert held_until(caps, history, held.until) is None


STRICTER = [
    (DEFAULT_CAPS, {}, DEFAULT_CAPS),
    (DEFAULT_CAPS, {"attempts_per_day": 1}, FrequencyCaps(1, 7, 0)),
    (DEFAULT_CAPS, {"attempts_per_day": 5}, DEFAULT_CAPS),  # never looser
    (DEFAULT_CAPS, {"quiet_days_after_answer": 3}, FrequencyCaps(3, 7, 3)),
    (FrequencyCaps(3, 7, 5), {"quiet_days_after_answer": 1}, FrequencyCaps(3, 7, 5)),
    (NO_CAPS, {"attempts_per_week": 2}, FrequencyCaps(None, 2, 0)),
]


@pytest.mark.parametrize(("tenant", "campaign", "caps"), STRICTER)
def test_a_campaign_is_only_ever_stricter(
    tenant: FrequencyCaps, campaign: dict[str, int], caps: FrequencyCaps
) -> None:
    assert tenant.stricter(**campaign) == caps


def test_a_tenant_without_caps_of_its_own_has_the_defaults() -> None:
    assert in_force((None, None, None), DEFAULT_CAPS) == DEFAULT_CAPS
    assert in_force((1, None, 4), DEFAULT_CAPS) == FrequencyCaps(1, 7, 4)
    assert not NO_CAPS.active
    assert DEFAULT_CAPS.active
