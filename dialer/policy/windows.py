"""Calling windows: when a call may be placed.

Every window answers two questions about an aware instant ``now``: ``allows(now)`` and
``next_open(now)``, the earliest instant at or after ``now`` that it allows (None if never).
Weekly hours are wall-clock hours in a time zone: an instant is allowed when its local wall
time falls inside the hours of its local weekday. Across a DST gap a window opens at the
first instant whose wall time is inside it; in a DST overlap repeated wall times are allowed
both times they occur.

Windows compose by intersection (:class:`AllOf`): a call is allowed when the campaign's
schedule, its weekly hours and the recipient's legal hours in every candidate zone all allow
it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.clock import as_utc

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A week and a day covers every weekly pattern; a search past it finds nothing new.
_PERIODIC_HORIZON = timedelta(days=8)
#: How far an intersection searches for a common opening: past a month of weekly hours, holiday
#: closures (four days in a row in places) and a campaign's own weekly hours, none comes.
_INTERSECTION_HORIZON = timedelta(days=35)


class Window(Protocol):
    def allows(self, now: datetime) -> bool: ...

    def next_open(self, now: datetime) -> datetime | None: ...


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True, slots=True)
class DailyHours:
    """Hours on some weekdays: ``start`` <= wall time < ``end``.

    ``end`` None means midnight at the end of the day; an ``end`` at or before ``start``
    crosses midnight into the next day (which then belongs to the day the hours started on).
    """

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time | None

    @property
    def crosses_midnight(self) -> bool:
        return self.end is not None and self.end <= self.start

    def contains(self, weekday: int, wall: time) -> bool:
        if self.end is None:
            return weekday in self.days and wall >= self.start
        if not self.crosses_midnight:
            return weekday in self.days and self.start <= wall < self.end
        return (weekday in self.days and wall >= self.start) or (
            (weekday - 1) % 7 in self.days and wall < self.end
        )


@dataclass(frozen=True)
class WeeklyHours:
    """Wall-clock hours by weekday in one IANA zone."""

    tz: str
    hours: tuple[DailyHours, ...]
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", zone(self.tz))

    @classmethod
    def every_day(cls, tz: str, start: time, end: time | None) -> WeeklyHours:
        return cls(tz, (DailyHours(frozenset(range(7)), start, end),))

    def allows(self, now: datetime) -> bool:
        local = as_utc(now).astimezone(self._zone)
        wall = local.time().replace(tzinfo=None)
        return any(h.contains(local.weekday(), wall) for h in self.hours)

    def next_open(self, now: datetime) -> datetime | None:
        now = as_utc(now)
        if self.allows(now):
            return now
        # The allowed set opens either where a start wall time occurs (in either fold) or
        # where a DST transition jumps the wall clock into the hours.
        candidates = [c for c in self._openings(now) if c > now and self.allows(c)]
        return min(candidates, default=None)

    def _openings(self, now: datetime) -> Iterator[datetime]:
        first = now.astimezone(self._zone).date() - timedelta(days=1)
        for offset in range(_PERIODIC_HORIZON.days + 2):
            day = first + timedelta(days=offset)
            for hours in self.hours:
                for fold in (0, 1):
                    local = datetime.combine(day, hours.start, self._zone).replace(fold=fold)
                    yield local.astimezone(UTC)
            yield from offset_changes(day, self._zone)


def offset_changes(day: date, tz: ZoneInfo) -> Iterator[datetime]:
    """Instants on local ``day`` where the zone's UTC offset changes (to the second)."""
    lo = _local_midnight_utc(day, tz)
    hi = _local_midnight_utc(day + timedelta(days=1), tz)
    if lo.astimezone(tz).utcoffset() == hi.astimezone(tz).utcoffset():
        return
    before = lo.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    # Offsets change on whole seconds, and ``hi`` lies within a second after the change.
    yield hi.replace(microsecond=0)


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Between:
    """An absolute span: ``start`` <= now < ``end``; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def allows(self, now: datetime) -> bool:
        now = as_utc(now)
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)

    def next_open(self, now: datetime) -> datetime | None:
        now = as_utc(now)
        if self.end is not None and now >= self.end:
            return None
        if self.start is not None and now < self.start:
            return as_utc(self.start)
        return now


@dataclass(frozen=True)
class AllOf:
    """The intersection of windows: allowed when every one of them allows."""

    windows: tuple[Window, ...]

    def allows(self, now: datetime) -> bool:
        return all(w.allows(now) for w in self.windows)

    def next_open(self, now: datetime) -> datetime | None:
        moment = as_utc(now)
        # The search starts where every absolute span has begun, so that a far-off campaign
        # start does not exhaust the horizon of the periodic windows.
        origin = moment
        for window in self.windows:
            if isinstance(window, Between) and window.start is not None:
                origin = max(origin, window.start)
        while moment - origin <= _INTERSECTION_HORIZON:
            for window in self.windows:
                if not window.allows(moment):
                    opened = window.next_open(moment)
                    if opened is None:
                        return None
                    moment = opened
                    break
            else:
                return moment
        return None


def parse_hours(
    spec: Iterable[tuple[Sequence[str], str, str]],
) -> tuple[DailyHours, ...]:
    """Daily hours from ``(days, "HH:MM", "HH:MM")`` rows; ``"24:00"`` ends at midnight."""
    rows = []
    for days, start, end in spec:
        unknown = [d for d in days if d.lower() not in WEEKDAYS]
        if unknown or not days:
            raise ValueError(f"days must be a non-empty subset of {', '.join(WEEKDAYS)}")
        rows.append(
            DailyHours(
                frozenset(WEEKDAYS.index(d.lower()) for d in days),
                _parse_wall(start),
                None if end == "24:00" else _parse_wall(end),
            )
        )
    return tuple(rows)


def _parse_wall(text: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{text!r} is not a wall time HH:MM") from None
