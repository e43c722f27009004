"""Figures of a chaos run for a person to quote: how each fault hit the calls in flight and
how long the fleet took to recover, from the carrier's records alone."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime, timedelta

from tests.chaos.evidence import CarrierCall, Evidence
from tests.chaos.records import Fault, RunRecord

STEP = timedelta(milliseconds=100)
BEFORE = timedelta(seconds=5)
HORIZON = timedelta(seconds=120)


class InFlight:
    """Calls live at the carrier at any instant, from their creation and end times."""

    def __init__(self, calls: Iterable[CarrierCall]) -> None:
        calls = list(calls)
        self._starts = sorted(c.created_at for c in calls)
        self._ends = sorted(c.ended_at for c in calls if c.ended_at is not None)

    def at(self, moment: datetime) -> int:
        return bisect.bisect_right(self._starts, moment) - bisect.bisect_right(self._ends, moment)

    def first_start_after(self, moment: datetime) -> datetime | None:
        i = bisect.bisect_right(self._starts, moment)
        return self._starts[i] if i < len(self._starts) else None

    def samples(self, begin: datetime, end: datetime) -> list[int]:
        out, t = [], begin
        while t <= end:
            out.append(self.at(t))
            t += STEP
        return out

    def reached(self, begin: datetime, level: float) -> datetime | None:
        t, end = begin, begin + HORIZON
        while t <= end:
            if self.at(t) >= level:
                return t
            t += STEP
        return None


def fault_line(fault: Fault, flight: InFlight, started: datetime) -> str:
    restored = fault.restored or fault.began
    before = flight.samples(fault.began - BEFORE, fault.began)
    level = sum(before) / max(len(before), 1)
    during = flight.samples(fault.began, restored)
    first = flight.first_start_after(restored)
    back = flight.reached(restored, max(1.0, level / 2))

    def after(moment: datetime | None) -> str:
        return "never" if moment is None else f"{(moment - restored).total_seconds():.1f}s"

    return (
        f"+{(fault.began - started).total_seconds():.0f}s {fault.name} ({fault.detail}): "
        f"in flight {level:.1f} before, "
        f"min {min(during, default=0)} during {(restored - fault.began).total_seconds():.1f}s; "
        f"after restore: first new call {after(first)}, back to half the level {after(back)}"
    )


def report(evidence: Evidence, record: RunRecord, campaign_ids: list[str]) -> list[str]:
    ids = set(campaign_ids)
    flight = InFlight(c for c in evidence.calls if c.campaign in ids)
    stats = evidence.stats
    lines = [fault_line(f, flight, record.started) for f in record.faults]
    took = (record.completed - record.started).total_seconds() if record.completed else None
    lines.append(
        "campaigns "
        + (f"completed {took:.1f}s after they started" if took else "did NOT all complete")
    )
    lines.append(
        f"carrier: {stats['total_calls']} calls, peak in flight {stats['peak']['total']}, "
        f"ended {stats['ended_by_status']}, faults {stats['faults']}, "
        f"webhooks {stats['webhooks']}"
    )
    if record.unexpected_exits:
        lines.append(f"processes that exited by themselves: {record.unexpected_exits}")
    return lines
