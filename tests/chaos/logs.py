"""What the fleet's own logs say about a run: rebuilds after Redis lost its data, provider
sweeps, dial tasks the outbox sent again, workers that started again in place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.chaos.fleet import ChaosFleet

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")
_REBUILT = re.compile(r"rebuilt from the database in ([0-9.]+) s")
_SWEEP = re.compile(
    r"sweep: (\d+) quiet call\(s\), (\d+) request\(s\), (\d+) fetched: ended \[([^\]]*)\]"
)
_RESENT = re.compile(r"re-sending (\d+) dial task\(s\)")


def stamp(line: str) -> datetime | None:
    """The time a log line was written (the fleet logs in UTC, like the machine's clock)."""
    found = _STAMP.match(line)
    if found is None:
        return None
    at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return at.replace(microsecond=int(found.group(2)) * 1000)


@dataclass(slots=True)
class Sweep:
    quiet: int
    requests: int
    fetched: int
    ended: int


@dataclass(slots=True)
class LogFigures:
    rebuilds_s: list[float] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    resent: list[tuple[datetime | None, int]] = field(default_factory=list)
    worker_restarts: int = 0

    def lines(self) -> list[str]:
        active = [s for s in self.sweeps if s.quiet]
        most = max((s.requests for s in active), default=0)
        mean = sum(s.requests for s in active) / len(active) if active else 0.0
        return [
            f"slots rebuilt after Redis lost its data: {len(self.rebuilds_s)} time(s), "
            f"taking {', '.join(f'{s * 1000:.0f} ms' for s in self.rebuilds_s) or '-'}",
            f"provider sweeps: {len(active)} with calls in flight, {mean:.1f} request(s) each "
            f"on average, {most} at most, for up to {max((s.quiet for s in active), default=0)} "
            f"quiet call(s); {sum(s.fetched for s in active)} call(s) fetched, "
            f"{sum(s.ended for s in active)} ended unheard",
            f"outbox re-sends: {sum(n for _, n in self.resent)} task(s) in "
            f"{len(self.resent)} batch(es); workers started again in place: "
            f"{self.worker_restarts}",
        ]


def read(fleet: ChaosFleet) -> LogFigures:
    figures = LogFigures()
    for line in fleet.log_lines("", "rebuilt from the database in"):
        if found := _REBUILT.search(line):
            figures.rebuilds_s.append(float(found.group(1)))
    for line in fleet.log_lines("scheduler", "sweep: "):
        if found := _SWEEP.search(line):
            quiet, requests, fetched = (int(found.group(n)) for n in (1, 2, 3))
            ended = len([x for x in found.group(4).split(",") if x.strip()])
            figures.sweeps.append(Sweep(quiet, requests, fetched, ended))
    for line in fleet.log_lines("scheduler", "re-sending"):
        if found := _RESENT.search(line):
            figures.resent.append((stamp(line), int(found.group(1))))
    figures.worker_restarts = len(fleet.log_lines("worker", "stopped without being asked to"))
    return figures
