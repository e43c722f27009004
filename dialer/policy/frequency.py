"""How often one number may be called, across all of a tenant's campaigns.

A tenant's caps (and a campaign's, which may only be stricter) bound the call attempts to one
number in any rolling 24 hours and any rolling 7 days, and may keep a number quiet for some
days after a person answered it. The facts are the number's contact history: when attempts
that reached the provider were placed, and when a person last answered.

Pure: :func:`held_until` takes the caps, the history and ``now`` and says whether a new call
must wait, until when, and why. A capped number is never ended for it: it waits until the
earliest instant the cap frees (the oldest counted attempt ages out of its window, or the
quiet days pass), so a retry policy with more attempts than a cap allows is slowed, never
stuck.

Each cap is optional: ``None`` is "no cap", and a quiet period of 0 days is off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
#: The largest value any cap may take (a sanity bound: only typos are refused).
MAX_CAP = 10_000


class CapReason(StrEnum):
    """Why a number must wait (stored on the recipient while it waits)."""

    PER_DAY = "frequency-cap-24h"
    PER_WEEK = "frequency-cap-7d"
    RECENTLY_ANSWERED = "recently-answered"


@dataclass(frozen=True, slots=True)
class FrequencyCaps:
    """At most ``attempts_per_day`` attempts in any 24 hours and ``attempts_per_week`` in any
    7 days; no new call for ``quiet_days_after_answer`` days after a person answered."""

    attempts_per_day: int | None = None
    attempts_per_week: int | None = None
    quiet_days_after_answer: int = 0

    @property
    def active(self) -> bool:
        """Whether any cap holds (else the history need not be read)."""
        return (
            self.attempts_per_day is not None
            or self.attempts_per_week is not None
            or self.quiet_days_after_answer > 0
        )

    def stricter(
        self,
        attempts_per_day: int | None = None,
        attempts_per_week: int | None = None,
        quiet_days_after_answer: int | None = None,
    ) -> FrequencyCaps:
        """These caps with a campaign's own on top: each the stricter of the two."""
        return FrequencyCaps(
            _least(self.attempts_per_day, attempts_per_day),
            _least(self.attempts_per_week, attempts_per_week),
            max(self.quiet_days_after_answer, quiet_days_after_answer or 0),
        )


def in_force(
    stored: tuple[int | None, int | None, int | None], defaults: FrequencyCaps
) -> FrequencyCaps:
    """A tenant's caps as stored (per day, per week, quiet days; each None: the deployment's
    ``defaults``) in force."""
    per_day, per_week, quiet_days = stored
    return FrequencyCaps(
        defaults.attempts_per_day if per_day is None else per_day,
        defaults.attempts_per_week if per_week is None else per_week,
        defaults.quiet_days_after_answer if quiet_days is None else quiet_days,
    )


def _least(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


@dataclass(frozen=True, slots=True)
class ContactHistory:
    """A number's contacts as the caps read them: when each attempt that reached the provider
    was placed (any order; those older than a week may be left out), and when a person last
    answered (None: never, or long ago)."""

    attempts: Sequence[datetime] = ()
    last_human_answer: datetime | None = None


NO_CONTACT = ContactHistory()
#: No cap at all.
NO_CAPS = FrequencyCaps()
#: The caps of a tenant that set none, unless the deployment's settings say otherwise.
DEFAULT_CAPS = FrequencyCaps(attempts_per_day=3, attempts_per_week=7, quiet_days_after_answer=0)


@dataclass(frozen=True, slots=True)
class Held:
    """A new call must wait until ``until`` because of ``reason``."""

    until: datetime
    reason: CapReason


def held_until(caps: FrequencyCaps, history: ContactHistory, now: datetime) -> Held | None:
    """Whether a new call to the number at ``now`` must wait, and until when; None: it may go.

    When several caps hold, the latest instant wins (the call waits for all of them), and
    the reason is the cap that frees last.
    """
    holds: list[Held] = []
    answered = history.last_human_answer
    if caps.quiet_days_after_answer > 0 and answered is not None:
        quiet_until = answered + timedelta(days=caps.quiet_days_after_answer)
        if quiet_until > now:
            holds.append(Held(quiet_until, CapReason.RECENTLY_ANSWERED))
    recent = sorted((at for at in history.attempts if at > now - WEEK), reverse=True)
    for limit, span, reason in (
        (caps.attempts_per_day, DAY, CapReason.PER_DAY),
        (caps.attempts_per_week, WEEK, CapReason.PER_WEEK),
    ):
        if limit is None:
            continue
        counted = [at for at in recent if at > now - span]
        if len(counted) >= limit:
            # Newest first: once the (limit)-th newest ages out, fewer than ``limit`` remain.
            holds.append(Held(counted[limit - 1] + span, reason))
    if not holds:
        return None
    return max(holds, key=lambda held: held.until)
