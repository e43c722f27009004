"""How the operator's commands print: rich tables and relative times on a terminal, plain
tab-separated or ``key: value`` lines with ISO times otherwise (pipes, files, scripts), and
JSON when asked for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dialer.calls import counters
from dialer.policy.attempt_state import Outcome, RecipientStatus

#: Recipient states in the order a campaign moves through them.
STATES: tuple[RecipientStatus, ...] = tuple(RecipientStatus)
_STYLE = {
    RecipientStatus.PENDING: "white",
    RecipientStatus.QUEUED: "cyan",
    RecipientStatus.IN_FLIGHT: "bright_cyan",
    RecipientStatus.WAITING_RETRY: "yellow",
    RecipientStatus.DONE: "green",
    RecipientStatus.EXHAUSTED: "magenta",
    RecipientStatus.SUPPRESSED: "bright_black",
    RecipientStatus.SKIPPED: "bright_black",
    RecipientStatus.CANCELED: "red",
}
_STATUS_STYLE = {"draft": "white", "running": "bold green", "paused": "yellow", "completed": "blue"}


def console() -> Console:
    """Standard output as rich sees it (a terminal or not; ``TTY_COMPATIBLE=1`` forces one)."""
    return Console(highlight=False, soft_wrap=False)


def state_style(state: RecipientStatus) -> str:
    return _STYLE[state]


def status_text(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def by_state(values: Mapping[str, int]) -> dict[str, int]:
    """Recipients by state, from a campaign's counters."""
    return {s.value: values[counters.recipient_key(s)] for s in STATES}


def by_outcome(values: Mapping[str, int]) -> dict[str, int]:
    """Ended attempts by outcome, from a campaign's counters."""
    return {o.value: values[counters.outcome_key(o)] for o in Outcome}


def nonzero(counts: Mapping[str, int], sep: str = " ") -> str:
    """``done 8, exhausted 2`` (``sep`` between a name and its count); ``none`` when empty."""
    return ", ".join(f"{name}{sep}{n}" for name, n in counts.items() if n) or "none"


def relative(moment: datetime | None, now: datetime) -> str:
    """``in 3 min``, ``12 s ago``, ``now``; ``-`` for no time."""
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    size = abs(seconds)
    for unit, per in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if size >= per:
            amount = f"{size / per:.0f} {unit}"
            break
    else:
        amount = f"{size:.0f} s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def when(moment: datetime | None, now: datetime, *, terminal: bool) -> str:
    """A time for people (``2026-12-03 17:54 UTC (in 3 min)``) or for scripts (ISO 8601)."""
    if moment is None:
        return "-"
    moment = moment.astimezone(UTC)
    if not terminal:
        return moment.isoformat()
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({relative(moment, now)})"


@dataclass
class Section:
    """A titled block of ``name: value`` lines (``show``); values may hold rich markup."""

    title: str
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, value: object) -> None:
        self.lines.append((name, str(value)))


def print_sections(out: Console, sections: Sequence[Section]) -> None:
    if out.is_terminal:
        for section in sections:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column()
            for name, value in section.lines:
                grid.add_row(name, value)
            out.print(f"[bold underline]{section.title}[/]")
            out.print(grid)
            out.print()
        return
    width = max((len(name) for s in sections for name, _ in s.lines), default=0)
    for section in sections:
        typer.echo(f"# {section.title}")
        for name, value in section.lines:
            typer.echo(f"{name.ljust(width)}  {_plain(value)}")


def _plain(value: str) -> str:
    """``value`` with rich markup taken out (plain output prints the text only)."""
    from rich.text import Text

    return Text.from_markup(value).plain


def print_table(
    out: Console,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None,
    wrap: Sequence[str] = (),
) -> None:
    """A rich table on a terminal (only the ``wrap`` columns wrap); tab-separated lines with
    a header otherwise."""
    if out.is_terminal:
        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold", no_wrap=column not in wrap)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    typer.echo("\t".join(columns))
    for row in rows:
        typer.echo("\t".join(_plain(cell) for cell in row))


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, default=str))
