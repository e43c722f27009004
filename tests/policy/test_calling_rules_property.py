"""No dial is ever allowed while any zone the number may ring in is outside its place's hours.

The screen's answer is checked against a plain reading of the rules: the local time in every
candidate zone (the explicit zone added when it is not one of them), the rule of every place
(the number's, an explicit region's), the public holidays straight from the ``holidays``
package for the local date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.policy.calling_hours import campaign_window
from dialer.policy.calling_rules import Rule, active_rules
from dialer.policy.campaign_state import CampaignStatus
from dialer.policy.places import Place, number_facts, parse_region
from dialer.policy.screen import CallNow, CampaignFacts, Deferred, RecipientFacts, screen

#: Numbers by the last digits appended to a prefix: multi-zone US codes, single-zone ones in
#: states with rules of their own, toll-free, and international numbers.
PREFIXES = [
    "+1208555",  # Idaho: Boise and Los Angeles zones
    "+1605555",  # South Dakota: Denver and North Dakota/Center
    "+1850555",  # Florida's rule
    "+1915555",  # El Paso: Texas's rule in the Denver zone
    "+1401555",  # Rhode Island
    "+1205555",  # Alabama
    "+1504555",  # Louisiana
    "+1601555",  # Mississippi
    "+1212555",  # New York
    "+1808555",  # Hawaii
    "+1888555",  # toll-free: every NANP zone
    "+3314234",  # Paris
    "+44207946",  # London
    "+8131234",  # Tokyo
    "+6129123",  # Sydney
]
EXPLICIT_ZONES = [None, "America/New_York", "America/Denver", "Europe/Paris", "Asia/Tokyo"]
REGIONS = [None, "US", "US-FL", "US-RI", "US-TX", "FR", "GB"]
ALWAYS_OPEN = CampaignFacts(
    CampaignStatus.RUNNING, None, campaign_window(None, None, None), schedule_end=None
)
numbers = st.builds(
    lambda prefix, tail: f"{prefix}{tail:04d}",
    st.sampled_from(PREFIXES),
    st.integers(2000, 9999),
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001
    max_value=datetime(2028, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _zones(number: str, explicit: str | None) -> set[str]:
    zones = set(number_facts(number).zones)
    if explicit:
        zones = {explicit} if explicit in zones or not zones else zones | {explicit}
    return zones


def _places(number: str, region: str | None) -> set[Place | None]:
    own = number_facts(number).place
    if region is None:
        return {own}
    explicit = parse_region(region)
    if own is None:
        return {explicit}
    if explicit.country != own.country:
        return {own, explicit}
    if explicit.subdivision is None:
        return {own}
    return {explicit} if own.subdivision is None else {own, explicit}


def _open(rule: Rule, place: Place | None, local: datetime) -> bool:
    wall = local.time()
    rows = [h for h in rule.hours if local.weekday() in h.days]
    if rule.holiday_hours is not None and place is not None:
        calendar = holidays.country_holidays(
            place.country, subdiv=place.subdivision, years=local.year
        )
        if local.date() in calendar:
            rows = list(rule.holiday_hours)
    return any(h.start <= wall and (h.end is None or wall < h.end) for h in rows)


def _legal_everywhere(number: str, tz: str | None, region: str | None, now: datetime) -> bool:
    book = active_rules()
    for zone in _zones(number, tz):
        local = now.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        for place in _places(number, region):
            rule = book.rule_for(
                place.country if place else None, place.subdivision if place else None
            )
            if not _open(rule, place, local):
                return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    number=numbers,
    tz=st.sampled_from(EXPLICIT_ZONES),
    region=st.sampled_from(REGIONS),
    now=moments,
)
def test_no_dial_outside_the_hours_of_any_candidate_zone(
    number: str, tz: str | None, region: str | None, now: datetime
) -> None:
    decision = screen(RecipientFacts(number, tz, False, region=region), ALWAYS_OPEN, now)
    assert isinstance(decision, CallNow) == _legal_everywhere(number, tz, region, now)
    if isinstance(decision, Deferred):
        # The deferral lands on a legal instant, and on none later than a minute's search
        # would find one.
        assert decision.until is not None
        assert _legal_everywhere(number, tz, region, decision.until)
        assert decision.until - now < timedelta(days=35)
