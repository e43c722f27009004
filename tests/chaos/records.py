"""What the run did and when, on the one clock the carrier also stamps its calls with.

Every change the checks must account for is kept as the moment its request was sent and the
moment its answer came back: the change committed somewhere in between, so a check treats a
call inside that span as a race (reported, not failed) and one after it as a violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Span:
    """From a request's sending to its answer: the change took effect somewhere inside."""

    sent: datetime
    done: datetime


@dataclass(frozen=True, slots=True)
class LimitChange:
    campaign: str
    limit: int
    span: Span


@dataclass(frozen=True, slots=True)
class Suppression:
    tenant: str
    number: str
    status_before: str  # the recipient's status when it was picked
    span: Span


@dataclass(frozen=True, slots=True)
class Pause:
    campaign: str
    paused: Span
    resumed: Span


@dataclass(slots=True)
class Fault:
    """One fault: when it began, when the fleet was whole again, and what it did."""

    name: str
    began: datetime
    restored: datetime | None = None
    detail: str = ""


@dataclass(slots=True)
class RunRecord:
    limit_changes: list[LimitChange] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    appended: dict[str, int] = field(default_factory=dict)  # campaign id -> recipients added
    unexpected_exits: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=now)
    completed: datetime | None = None
