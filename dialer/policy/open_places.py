"""Places to call whatever the hour: a number prefix whose numbers ring in exactly one zone,
and a way to pick the one whose calling hours stay open longest from now.

The demo and the tests make recipients here so that a run at any hour of any day finds
someone it may legally call. The choice asks the real policy (:func:`legal_hours_for` with the
active rules: weekly hours, Sunday rules, public holidays), not a fixed 08:00-21:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.clock import as_utc
from dialer.policy.calling_hours import legal_hours_for
from dialer.policy.calling_rules import RuleBook
from dialer.policy.legal_hours import LegalHours

#: Steps at which a place is checked to stay open (hours never open for less than this).
_STEP = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class OpenPlace:
    """Numbers ``prefix`` + ``width`` digits from ``first`` on (``size`` of them): valid, and
    all in ``zone`` alone."""

    name: str
    zone: str
    prefix: str
    width: int = 4
    first: int = 0
    size: int = 10_000

    def number(self, index: int) -> str:
        """The ``index``-th number of the place."""
        if not 0 <= index < self.size:
            raise ValueError(f"a place has numbers 0 to {self.size - 1}")
        return f"{self.prefix}{self.first + index:0{self.width}d}"


#: Around the globe: at any moment some of them are well inside their hours.
PLACES = (
    OpenPlace("New York", "America/New_York", "+1212555"),
    OpenPlace("Chicago", "America/Chicago", "+1312555"),
    OpenPlace("Mexico City", "America/Mexico_City", "+52551234"),
    OpenPlace("Denver", "America/Denver", "+1303555"),
    OpenPlace("Los Angeles", "America/Los_Angeles", "+1213555"),
    OpenPlace("Honolulu", "Pacific/Honolulu", "+1808555"),
    OpenPlace("São Paulo", "America/Sao_Paulo", "+55113555"),
    OpenPlace("Buenos Aires", "America/Buenos_Aires", "+54112345"),
    OpenPlace("Azores", "Atlantic/Azores", "+35129520"),
    OpenPlace("London", "Europe/London", "+44207946"),
    OpenPlace("Berlin", "Europe/Berlin", "+49301234"),
    OpenPlace("Cairo", "Africa/Cairo", "+2021234"),
    OpenPlace("Athens", "Europe/Athens", "+30212345"),
    OpenPlace("Moscow", "Europe/Moscow", "+7495123"),
    OpenPlace("Dubai", "Asia/Dubai", "+9712234"),
    OpenPlace("Kolkata", "Asia/Calcutta", "+91741041"),
    OpenPlace("Dhaka", "Asia/Dhaka", "+8802711"),
    OpenPlace("Bangkok", "Asia/Bangkok", "+662123"),
    OpenPlace("Beijing", "Asia/Shanghai", "+86101234"),
    OpenPlace("Tokyo", "Asia/Tokyo", "+8131234"),
    OpenPlace("Sydney", "Australia/Sydney", "+6129123"),
    OpenPlace("Auckland", "Pacific/Auckland", "+649303"),
)


#: Places of millions of numbers each (a whole exchange range), for the benchmarks.
WIDE_PLACES = tuple(
    OpenPlace(name, zone, prefix, width=7, first=2_000_000, size=3_000_000)
    for name, zone, prefix in (
        ("New York", "America/New_York", "+1212"),
        ("Chicago", "America/Chicago", "+1312"),
        ("Denver", "America/Denver", "+1303"),
        ("Los Angeles", "America/Los_Angeles", "+1213"),
        ("Honolulu", "Pacific/Honolulu", "+1808"),
        ("London", "Europe/London", "+44207"),
        ("Berlin", "Europe/Berlin", "+4930"),
        ("Tokyo", "Asia/Tokyo", "+8135"),
        ("Sydney", "Australia/Sydney", "+6129"),
    )
)


def open_for(place: OpenPlace, now: datetime, rules: RuleBook | None = None) -> timedelta:
    """How long from ``now`` the place's calling hours stay open (0 if closed), up to a day."""
    legal = legal_hours_for(place.number(0), rules=rules)
    assert isinstance(legal, LegalHours), place  # every place maps to a zone
    now = as_utc(now)
    span = timedelta(0)
    while span < timedelta(days=1) and legal.allows(now + span):
        span += _STEP
    return span


def place_open(
    now: datetime,
    *,
    for_at_least: timedelta = timedelta(hours=2),
    rules: RuleBook | None = None,
    places: tuple[OpenPlace, ...] = PLACES,
) -> OpenPlace:
    """The place (of ``places``) whose hours stay open longest from ``now``; AssertionError
    if even that one closes within ``for_at_least``."""
    best = max(places, key=lambda p: open_for(p, now, rules))
    if open_for(best, now, rules) < for_at_least:
        raise AssertionError(f"no place stays open {for_at_least} from {now.isoformat()}")
    return best


def place_closed(
    now: datetime,
    *,
    for_at_least: timedelta = timedelta(hours=2),
    rules: RuleBook | None = None,
) -> OpenPlace:
    """A place whose hours stay closed for ``for_at_least`` from ``now``."""
    for place in PLACES:
        legal = legal_hours_for(place.number(0), rules=rules)
        assert isinstance(legal, LegalHours), place
        opens = legal.next_open(now)
        if opens is None or opens - as_utc(now) >= for_at_least:
            return place
    raise AssertionError(f"no place stays closed {for_at_least} from {now.isoformat()}")
