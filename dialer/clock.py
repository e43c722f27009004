"""Time: aware UTC datetimes everywhere, and a clock that callers inject."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock, as an aware UTC datetime. The default :data:`Clock`."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` converted to UTC; naive datetimes are refused rather than guessed at."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)
