from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialer.policy.calling_hours import (
    UNKNOWN_TIME_ZONE,
    NotCallable,
    WeeklyScheduleSpec,
    campaign_window,
    legal_hours_for,
    recipient_window,
)
from dialer.policy.calling_rules import active_rules
from dialer.policy.legal_hours import LegalHours, PlaceHours
from dialer.policy.windows import AllOf, Between, DailyHours, WeeklyHours, Window

NY = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_17 = WeeklyScheduleSpec.model_validate(
    {
        "timezone": "America/New_York",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    }
)


def every_day_8_to_21(zones: tuple[str, ...]) -> LegalHours:
    """The default rule (08:00-21:00 every day, holidays as usual) in each of ``zones``."""
    return LegalHours(tuple(PlaceHours(tz, active_rules().default, None) for tz in zones))


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_weekday_hours_allow_inside_and_open_next_morning() -> None:
    window = WEEKDAYS_9_TO_17.to_window()
    assert window.allows(ny(2026, 11, 23, 10, 0))  # Monday
    assert not window.allows(ny(2026, 11, 23, 17, 0))  # end is exclusive
    assert window.next_open(ny(2026, 11, 23, 17, 0)) == ny(2026, 11, 24, 9, 0)
    # Friday evening opens on Monday morning.
    assert window.next_open(ny(2026, 11, 27, 18, 0)) == ny(2026, 11, 30, 9, 0)


def test_hours_crossing_midnight_belong_to_the_day_they_start() -> None:
    window = WeeklyHours("America/New_York", (DailyHours(frozenset({4}), time(22), time(2)),))
    assert window.allows(ny(2026, 11, 27, 23, 0))  # Friday 23:00
    assert window.allows(ny(2026, 11, 28, 1, 59))  # Saturday 01:59, still Friday's hours
    assert not window.allows(ny(2026, 11, 28, 22, 30))  # Saturday night is not allowed
    assert window.next_open(ny(2026, 11, 28, 3, 0)) == ny(2026, 12, 4, 22, 0)


def test_spring_forward_gap_opens_at_the_first_instant_inside() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT: wall times 02:00-02:59 never happen.
    window = WeeklyHours.every_day("America/New_York", time(2, 30), time(5))
    opened = window.next_open(datetime(2026, 3, 8, 5, 0, tzinfo=UTC))  # 00:00 EST
    assert opened == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert not window.allows(opened - timedelta(seconds=1))


def test_fall_back_overlap_allows_repeated_wall_times_twice() -> None:
    # 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:00-01:59 happens twice.
    window = WeeklyHours.every_day("America/New_York", time(1, 30), time(1, 45))
    first = window.next_open(datetime(2026, 11, 1, 4, 0, tzinfo=UTC))  # 00:00 EDT
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = window.next_open(datetime(2026, 11, 1, 5, 50, tzinfo=UTC))  # 01:50 EDT
    assert second == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST


def test_legal_hours_need_every_candidate_zone() -> None:
    legal = every_day_8_to_21(("America/New_York", "America/Los_Angeles"))
    # 08:30 in New York is 05:30 in Los Angeles: not yet.
    assert not legal.allows(ny(2026, 11, 23, 8, 30))
    assert legal.next_open(ny(2026, 11, 23, 8, 30)) == ny(2026, 11, 23, 11, 0)
    # 20:30 in New York is fine in both; 21:00 is not.
    assert legal.allows(ny(2026, 11, 23, 20, 59))
    assert not legal.allows(ny(2026, 11, 23, 21, 0))


def test_recipient_legal_hours_from_the_number() -> None:
    hours = legal_hours_for("+14155552671")  # San Francisco
    assert isinstance(hours, LegalHours)
    assert hours.zones == ("America/Los_Angeles",)
    # An explicit zone outside the number's zones is checked together with them.
    explicit = legal_hours_for("+14155552671", "Europe/Paris")
    assert isinstance(explicit, LegalHours)
    assert explicit.zones == ("America/Los_Angeles", "Europe/Paris")
    toll_free = legal_hours_for("+18005551234")
    assert isinstance(toll_free, LegalHours)
    assert len(toll_free.zones) > 10


def test_unknown_zone_without_an_explicit_one_is_not_callable() -> None:
    # +870 is a satellite network: phonenumbers knows no zone for it.
    assert legal_hours_for("+870301234567") == NotCallable(UNKNOWN_TIME_ZONE)


def test_campaign_span_weekly_hours_and_legal_hours_compose() -> None:
    campaign = campaign_window(ny(2026, 11, 24, 0, 0), ny(2026, 11, 26, 0, 0), WEEKDAYS_9_TO_17)
    hours = legal_hours_for("+14155552671")
    assert isinstance(hours, LegalHours)
    window = recipient_window(campaign, hours)
    # Before the campaign starts: the first instant is Tuesday 11:00 NY (08:00 in LA).
    assert window.next_open(ny(2026, 11, 20, 12, 0)) == ny(2026, 11, 24, 11, 0)
    # After the last allowed hour of the span: never again.
    assert window.next_open(ny(2026, 11, 25, 17, 0)) is None


def test_windows_that_never_overlap_have_no_next_open() -> None:
    tokyo_night = WeeklyHours.every_day("Asia/Tokyo", time(0), time(6))
    ny_evening = WeeklyHours.every_day("America/New_York", time(20), time(21))
    # 20:00-21:00 in New York is 10:00-11:00 (or 09:00-10:00) in Tokyo.
    assert AllOf((tokyo_night, ny_evening)).next_open(ny(2026, 11, 23, 0, 0)) is None


def test_between_is_half_open() -> None:
    span = Between(ny(2026, 1, 1, 0, 0), ny(2026, 1, 2, 0, 0))
    assert span.allows(ny(2026, 1, 1, 0, 0))
    assert not span.allows(ny(2026, 1, 2, 0, 0))
    assert span.next_open(ny(2025, 12, 1, 0, 0)) == ny(2026, 1, 1, 0, 0)
    assert span.next_open(ny(2026, 1, 2, 0, 0)) is None


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"timezone": "Mars/Olympus", "hours": [{"start": "09:00", "end": "17:00"}]}, "timezone"),
        ({"timezone": "UTC", "hours": []}, "hours"),
        ({"timezone": "UTC", "hours": [{"start": "9am", "end": "17:00"}]}, "hours.0.start"),
        ({"timezone": "UTC", "hours": [{"start": "09:00", "end": "25:00"}]}, "hours.0.end"),
        (
            {"timezone": "UTC", "hours": [{"days": ["funday"], "start": "09:00", "end": "17:00"}]},
            "hours.0",
        ),
    ],
)
def test_bad_weekly_schedules_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WeeklyScheduleSpec.model_validate(document)
    paths = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert any(path.startswith(field) for path in paths), paths


# Zones with DST rules of every kind: none, northern, southern, half-hour DST, 45-minute offsets.
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
]
walls = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
daily = st.builds(
    DailyHours,
    st.frozensets(st.integers(0, 6), min_size=1),
    walls,
    st.one_of(st.none(), walls),
)
weekly = st.builds(
    WeeklyHours, st.sampled_from(ZONES), st.lists(daily, min_size=1, max_size=3).map(tuple)
)
legal = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True).map(
    lambda zones: every_day_8_to_21(tuple(zones))
)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001
    max_value=datetime(2030, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
spans = st.builds(
    lambda start, length_h: Between(start, start + timedelta(hours=length_h)),
    moments,
    st.integers(1, 24 * 30),
)
composites = st.builds(
    lambda parts: AllOf(tuple(parts)),
    st.lists(st.one_of(weekly, legal, spans), min_size=1, max_size=3),
)


def _assert_next_open_is_earliest(window: Window, now: datetime, probes: list[float]) -> None:
    opened = window.next_open(now)
    if opened is None:
        return
    assert opened >= now
    assert window.allows(opened)
    gap = opened - now
    if gap > timedelta(0):
        # Nothing allowed lies between: probe a grid, random points and the last second.
        step = max(gap / 400, timedelta(minutes=1))
        moment = now
        while moment < opened:
            assert not window.allows(moment), moment
            moment += step
        for fraction in probes:
            probe = now + gap * fraction
            if probe < opened:  # the product may round up to ``opened`` itself
                assert not window.allows(probe), probe
        if gap >= timedelta(seconds=1):
            assert not window.allows(opened - timedelta(seconds=1))


probes = st.lists(st.floats(0, 1, exclude_max=True), max_size=20)


@settings(max_examples=300, deadline=None)
@given(weekly, moments, probes)
def test_weekly_next_open_is_allowed_and_earliest(
    window: WeeklyHours, now: datetime, fractions: list[float]
) -> None:
    _assert_next_open_is_earliest(window, now, fractions)


@settings(max_examples=200, deadline=None)
@given(composites, moments, probes)
def test_composite_next_open_is_allowed_and_earliest(
    window: AllOf, now: datetime, fractions: list[float]
) -> None:
    _assert_next_open_is_earliest(window, now, fractions)


DST_CHANGES = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York springs forward
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York falls back
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # London springs forward
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe falls back half an hour
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe springs forward
]


@settings(max_examples=300, deadline=None)
@given(
    weekly,
    st.sampled_from(DST_CHANGES),
    st.integers(-36 * 3600, 36 * 3600),
    probes,
)
def test_next_open_across_dst_changes(
    window: WeeklyHours, change: datetime, offset_s: int, fractions: list[float]
) -> None:
    _assert_next_open_is_earliest(window, change + timedelta(seconds=offset_s), fractions)
