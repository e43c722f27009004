"""A recipient's legal calling hours: the rules of its place(s) in every zone it may ring in.

:class:`PlaceHours` is one rule in one zone: its weekly hours on the local weekday, or its
holiday rule on a local date that is a public holiday of the place (``holidays`` package).
:class:`LegalHours` requires every one of them. Both are windows (``allows`` /
``next_open``), so the screen, the waits and the deferrals use them like any other.
:func:`explain` says, for an audit, what was checked at a given instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

from dialer.clock import as_utc
from dialer.policy.calling_rules import Rule
from dialer.policy.places import Place
from dialer.policy.windows import AllOf, DailyHours, offset_changes, zone

#: Every weekday, for holiday hours.
_ALL_DAYS = frozenset(range(7))
#: Days a single rule's next opening is searched (a rule opens at least weekly, and no
#: run of holidays lasts a year).
_SEARCH_DAYS = 370


@lru_cache(maxsize=4096)
def holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of a place in ``year`` (none when no calendar is known for it)."""
    supported = holiday_calendars.list_supported_countries()
    if country not in supported:
        return frozenset()
    subdiv = subdivision if subdivision in supported[country] else None
    calendar = holiday_calendars.country_holidays(country, subdiv=subdiv, years=year)
    return frozenset(calendar.keys())


@dataclass(frozen=True)
class PlaceHours:
    """One place's rule in one zone."""

    tz: str
    rule: Rule
    #: Whose public holidays count (None: the default rule of a number of no country).
    place: Place | None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", zone(self.tz))

    def is_holiday(self, day: date) -> bool:
        if self.rule.holiday_hours is None or self.place is None:
            return False
        return day in holiday_dates(self.place.country, self.place.subdivision, day.year)

    def _rows(self, day: date) -> tuple[DailyHours, ...]:
        if self.is_holiday(day):
            return self.rule.holiday_hours or ()
        weekday = day.weekday()
        return tuple(h for h in self.rule.hours if weekday in h.days)

    def allows(self, now: datetime) -> bool:
        local = as_utc(now).astimezone(self._zone)
        wall = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        # Holiday rows hold on every weekday; rule rows never cross midnight (checked on load).
        return any(h.contains(weekday, wall) for h in self._rows(local.date()))

    def next_open(self, now: datetime) -> datetime | None:
        now = as_utc(now)
        if self.allows(now):
            return now
        first = now.astimezone(self._zone).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            day = first + timedelta(days=offset)
            found = [c for c in self._openings(day) if c > now and self.allows(c)]
            if found:
                return min(found)
        return None

    def _openings(self, day: date) -> Iterator[datetime]:
        """Where the allowed set may open on local ``day``: a start wall time (in either
        fold), or a change of the zone's offset that jumps the wall clock into the hours."""
        for hours in self._rows(day):
            for fold in (0, 1):
                local = datetime.combine(day, hours.start, self._zone).replace(fold=fold)
                yield local.astimezone(UTC)
        yield from offset_changes(day, self._zone)
        # A day that opens at midnight, after a closed one.
        yield datetime.combine(day, datetime.min.time(), self._zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ZoneCheck:
    """What :func:`explain` found in one zone under one rule."""

    zone: str
    local_time: datetime
    rule: str
    place: str | None
    holiday: bool
    open: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "local_time": self.local_time.isoformat(),
            "rule": self.rule,
            "place": self.place,
            "holiday": self.holiday,
            "open": self.open,
        }


@dataclass(frozen=True)
class LegalHours:
    """Legal hours required in every zone, each under the rule of each place that applies."""

    checks: tuple[PlaceHours, ...]
    #: The version of the rules file the checks come from.
    rules_version: str = ""

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError("legal hours need at least one time zone")

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.tz for c in self.checks))

    @cached_property
    def _window(self) -> AllOf:
        return AllOf(self.checks)

    def allows(self, now: datetime) -> bool:
        return all(c.allows(now) for c in self.checks)

    def next_open(self, now: datetime) -> datetime | None:
        return self._window.next_open(now)

    def explain(self, now: datetime) -> list[ZoneCheck]:
        """Each zone checked at ``now``: its local time, the rule, and whether it allowed."""
        now = as_utc(now)
        out = []
        for check in self.checks:
            local = now.astimezone(ZoneInfo(check.tz))
            place = None if check.place is None else str(check.place)
            holiday = check.is_holiday(local.date())
            out.append(
                ZoneCheck(check.tz, local, check.rule.key, place, holiday, check.allows(now))
            )
        return out


def explain(legal: LegalHours, now: datetime) -> dict[str, Any]:
    """For an audit record: the rules file version and every zone checked at ``now``."""
    return {
        "rules_version": legal.rules_version,
        "checks": [c.as_dict() for c in legal.explain(now)],
    }
