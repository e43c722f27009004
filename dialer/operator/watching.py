"""Following a campaign until it completes: live progress bars by recipient state on a
terminal, one line per change otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text
from sqlalchemy.orm import Session

from dialer.calls import counters
from dialer.clock import utc_now
from dialer.operator import output
from dialer.operator.session import Operator
from dialer.policy.attempt_state import TERMINAL_RECIPIENT
from dialer.policy.campaign_state import CampaignStatus
from dialer.services import campaigns

_ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A campaign's status and counts at one read."""

    name: str
    status: str
    ended_reason: str | None
    states: dict[str, int]
    outcomes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def ended(self) -> int:
        return sum(self.states[s.value] for s in TERMINAL_RECIPIENT)

    @property
    def completed(self) -> bool:
        return self.status == CampaignStatus.COMPLETED.value

    def line(self) -> str:
        """One line for logs and pipes: status, every state's count, how many ended."""
        states = " ".join(f"{name}={n}" for name, n in self.states.items())
        return f"{self.status} {states} {_ENDED}={self.ended}/{self.total}"

    def summary(self, campaign_id: str) -> str:
        """The closing line: where the campaign ended and where its recipients are."""
        reason = f" ({self.ended_reason})" if self.ended_reason else ""
        return (
            f"campaign {campaign_id} {self.status}{reason}: {self.ended}/{self.total} "
            f"recipients ended; {output.nonzero(self.states)}; "
            f"calls by outcome: {output.nonzero(self.outcomes)}"
        )


def read_snapshot(op: Operator, campaign_id: str) -> Snapshot:
    def read(session: Session) -> Snapshot:
        campaign = campaigns.get(session, op.tenant_id, campaign_id)
        values = counters.read(session, [campaign.id])[campaign.id]
        return Snapshot(
            campaign.name,
            campaign.status.value,
            campaign.ended_reason.value if campaign.ended_reason else None,
            output.by_state(values),
            output.by_outcome(values),
        )

    return op.read(read)


def watch(
    op: Operator,
    campaign_id: str,
    out: Console,
    *,
    interval_s: float,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Read the campaign every ``interval_s`` until it completes; its last snapshot (also
    when ``timeout_s`` passed first: the caller tells by :attr:`Snapshot.completed`)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    if out.is_terminal:
        return _live(op, campaign_id, out, interval_s, deadline, sleep)
    last = ""
    while True:
        snapshot = read_snapshot(op, campaign_id)
        line = snapshot.line()
        if line != last:
            out.file.write(f"{utc_now().isoformat(timespec='seconds')} {line}\n")
            out.file.flush()
            last = line
        if _done(snapshot, deadline):
            return snapshot
        sleep(interval_s)


def _done(snapshot: Snapshot, deadline: float | None) -> bool:
    return snapshot.completed or (deadline is not None and time.monotonic() >= deadline)


def _live(
    op: Operator,
    campaign_id: str,
    out: Console,
    interval_s: float,
    deadline: float | None,
    sleep: Callable[[float], None],
) -> Snapshot:
    bars = Progress(
        TextColumn("{task.description}", justify="right"),
        BarColumn(bar_width=40),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        console=out,
        auto_refresh=False,
    )
    tasks: dict[str, TaskID] = {_ENDED: bars.add_task(f"[bold]{_ENDED}[/]", total=None)}
    for state in output.STATES:
        style = output.state_style(state)
        tasks[state.value] = bars.add_task(f"[{style}]{state.value}[/]", total=None)
    snapshot = read_snapshot(op, campaign_id)
    _fill(bars, tasks, snapshot)
    with Live(_view(campaign_id, snapshot, bars), console=out, auto_refresh=False) as live:
        while not _done(snapshot, deadline):
            sleep(interval_s)
            snapshot = read_snapshot(op, campaign_id)
            _fill(bars, tasks, snapshot)
            live.update(_view(campaign_id, snapshot, bars), refresh=True)
    return snapshot


def _fill(bars: Progress, tasks: dict[str, TaskID], snapshot: Snapshot) -> None:
    total = max(snapshot.total, 1)
    bars.update(tasks[_ENDED], completed=snapshot.ended, total=total)
    for name, n in snapshot.states.items():
        bars.update(tasks[name], completed=n, total=total)


def _view(campaign_id: str, snapshot: Snapshot, bars: Progress) -> Group:
    reason = f" ({snapshot.ended_reason})" if snapshot.ended_reason else ""
    header = Text.from_markup(
        f"[bold]{escape(snapshot.name)}[/] {campaign_id}  "
        f"{output.status_text(snapshot.status)}{escape(reason)}  "
        f"calls by outcome: {output.nonzero(snapshot.outcomes)}"
    )
    return Group(header, bars)
