"""Calls-per-second pacing: the interface, the rate value, and the GCRA arithmetic.

Providers cap how fast calls may be *started* (Twilio: 1 call/s per account by default, 5 with
a business profile; calls above it are queued by Twilio and hold our concurrency slot while
they wait). Every worker on every machine shares one pace per key, so the state lives in the
store (Redis, or memory in embedded mode).

The algorithm is GCRA (the generic cell rate algorithm): each key stores one number, the
*theoretical arrival time* ``tat``. A call is allowed at ``now`` when
``now >= max(tat, now) - tolerance_s``; taking it sets ``tat = max(tat, now) + interval_s``.
With ``burst=1`` calls are spaced at least ``1 / per_s`` apart; any window of ``window`` seconds
admits at most ``burst + window * per_s`` calls.

Why not the ``limits`` library (it was evaluated first):

- Its Redis strategies stamp entries with the *client's* ``time.time()``; workers on machines
  with skewed clocks would pace each other wrongly. Here time is Redis ``TIME``, as for the
  semaphore.
- A call must pass the account pace *and* the caller pace. ``limits`` hits one key per call:
  hitting the account then failing the caller burns account capacity, and testing both before
  hitting races with other workers. Here one script checks every key and takes all or none.
- The wait until the next permitted instant comes back from the same atomic call, rather than
  from a second ``get_window_stats`` round trip that may already be stale.
- Its memory storage reads the wall clock on a timer thread, so tests would have to sleep; the
  memory pacer here takes an injected clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dialer.concurrency.rate.fair import TenantShare
    from dialer.concurrency.rate.permits import Ask


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``per_s`` calls per second on ``key``, with bursts of up to ``burst`` calls."""

    key: str
    per_s: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_s > 0:
            raise ValueError(f"per_s must be > 0, not {self.per_s}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, not {self.burst}")

    @property
    def interval_s(self) -> float:
        """Seconds between calls at the steady rate."""
        return 1.0 / self.per_s

    @property
    def tolerance_s(self) -> float:
        """How far ahead of the steady schedule a burst may run, in seconds."""
        return (self.burst - 1) * self.interval_s


def gcra_wait_s(rate: Rate, tat: float | None, now: float) -> float:
    """Seconds from ``now`` until ``rate`` admits a call (0.0: admitted now).

    ``tat`` is the key's stored theoretical arrival time, None when the key is idle.
    """
    start = now if tat is None else max(tat, now)
    return max(0.0, start - rate.tolerance_s - now)


def gcra_take(rate: Rate, tat: float | None, now: float) -> float:
    """The key's new theoretical arrival time once a call is taken at ``now``."""
    start = now if tat is None else max(tat, now)
    return start + rate.interval_s


class CallRateLimiter(Protocol):
    """Paces call starts across every worker that shares the store."""

    def try_acquire(self, rates: Sequence[Rate], share: TenantShare | None = None) -> float:
        """Take one call from every rate, or none.

        Returns 0.0 when taken: the call may be placed now. Otherwise nothing is taken, and the
        result is the seconds (> 0, at most the largest ``interval_s``, or with ``share`` the
        tenant's share interval) until the call may be admitted: re-enqueue the task with
        that countdown. Another worker may get there first, in which case the next try
        returns a new wait.

        With ``share``, the account rate it names is shared fairly between the tenants
        trying to start calls (:mod:`~dialer.concurrency.rate.fair`), in the same atomic
        step.
        """
        ...

    def reserve(
        self,
        asks: Sequence[Ask],
        share: TenantShare | None = None,
        *,
        ahead_s: float,
        late_s: float,
    ) -> list[float | None]:
        """Reserve a start for each ask within ``ahead_s`` seconds, in order, in one atomic
        step (:mod:`~dialer.concurrency.rate.permits`).

        Returns each ask's wait in seconds from now (0.0: now), or None where no instant
        within ``ahead_s`` admits it (nothing taken for it). Each start given is taken from
        every rate (and the share) as a call at that instant takes it, and kept as a permit
        under the ask's key until ``late_s`` seconds after it, for :meth:`redeem`.
        """
        ...

    def redeem(self, permit_key: str) -> float | None:
        """Use the permit kept under ``permit_key``: 0.0 when used (the call may start now:
        its pace was taken when it was reserved), the seconds until its instant when it is
        not yet due (not used), None when there is none (never given, used, or lapsed)."""
        ...
