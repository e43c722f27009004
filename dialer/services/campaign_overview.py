"""What an operator sees of one campaign beyond its counts: its runs, its calls in flight as
the database has them, when its next recipient is due, and whether its own calling window
(schedule span and weekly hours) is open.

Read-only and cheap: every figure comes from an index range (runs by campaign, live attempts
from the partial index of calls in flight, the next due recipient from the due index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls.facts import window_of
from dialer.db.models import CallAttempt, Campaign, CampaignRun, Recipient
from dialer.policy.attempt_state import CLAIMABLE_RECIPIENT, AttemptStatus

#: Runs listed, the latest first.
RECENT_RUNS = 5


@dataclass(frozen=True, slots=True)
class RunSummary:
    number: int
    started_at: datetime
    ended_at: datetime | None
    ended_reason: str | None


@dataclass(frozen=True, slots=True)
class WindowState:
    """The campaign's own window at ``now``: open, or when it opens next (None: never again
    under its current schedule). Each recipient's legal hours narrow it further."""

    open: bool
    next_open: datetime | None
    schedule_end: datetime | None


@dataclass(frozen=True, slots=True)
class Overview:
    #: The latest :data:`RECENT_RUNS` runs, the latest first, and how many there were.
    runs: tuple[RunSummary, ...]
    run_count: int
    #: Attempts not ended yet (queued, dialing, ringing, in progress), as the database says.
    calls_in_flight: int
    #: Recipients waiting to be called (pending, or waiting for a retry) whose time has come.
    due_now: int
    #: When the earliest waiting recipient is (or was) due; None when nobody waits.
    next_due_at: datetime | None
    window: WindowState

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": [
                {
                    "number": r.number,
                    "started_at": _iso(r.started_at),
                    "ended_at": _iso(r.ended_at),
                    "ended_reason": r.ended_reason,
                }
                for r in self.runs
            ],
            "run_count": self.run_count,
            "calls_in_flight": self.calls_in_flight,
            "due_now": self.due_now,
            "next_due_at": _iso(self.next_due_at),
            "window": {
                "open": self.window.open,
                "next_open": _iso(self.window.next_open),
                "schedule_end": _iso(self.window.schedule_end),
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def overview(session: Session, campaign: Campaign, now: datetime) -> Overview:
    """The :class:`Overview` of a campaign already loaded for its tenant."""
    runs = session.execute(
        sa.select(
            CampaignRun.number, CampaignRun.started_at, CampaignRun.ended_at,
            CampaignRun.ended_reason,
        )
        .where(CampaignRun.campaign_id == campaign.id)
        .order_by(CampaignRun.number.desc())
        .limit(RECENT_RUNS)
    ).all()  # fmt: skip
    run_count = session.scalar(
        sa.select(sa.func.count())
        .select_from(CampaignRun)
        .where(CampaignRun.campaign_id == campaign.id)
    )
    in_flight = session.scalar(
        sa.select(sa.func.count())
        .select_from(CallAttempt)
        .where(CallAttempt.campaign_id == campaign.id, CallAttempt.status != AttemptStatus.ENDED)
    )
    waiting = (Recipient.campaign_id == campaign.id, Recipient.status.in_(CLAIMABLE_RECIPIENT))
    next_due = session.scalar(sa.select(sa.func.min(Recipient.next_attempt_at)).where(*waiting))
    due_now = session.scalar(
        sa.select(sa.func.count())
        .select_from(Recipient)
        .where(*waiting, Recipient.next_attempt_at <= now)
    )
    window = window_of(campaign)
    is_open = window.allows(now)
    return Overview(
        runs=tuple(
            RunSummary(number, started, ended, reason.value if reason is not None else None)
            for number, started, ended, reason in runs
        ),
        run_count=int(run_count or 0),
        calls_in_flight=int(in_flight or 0),
        due_now=int(due_now or 0),
        next_due_at=next_due,
        window=WindowState(
            open=is_open,
            next_open=now if is_open else window.next_open(now),
            schedule_end=campaign.schedule_end_time,
        ),
    )
