"""Attempts stuck past their bound are reconciled with the provider, never left hanging.

Bounds: a dialing attempt with no call id for ``unplaced_after_s`` (the worker died between
the claim and storing the call id, or the dial timed out); any live attempt past ring time +
time limit + margin since it was dialed (callbacks lost). The provider's record decides the
outcome; a call it does not know ends ``unknown``; the retry policy then decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from dialer.db.models import CallAttempt
from dialer.errors import ProviderError, TerminalProviderError
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.services import attempts
from dialer.services.dialing import Dialer

log = logging.getLogger(__name__)

#: Attempts examined per pass (the oldest first).
BATCH = 200


@dataclass(slots=True)
class ReapReport:
    examined: int = 0
    ended: list[int] = field(default_factory=list)
    still_live: list[int] = field(default_factory=list)
    unresolved: list[int] = field(default_factory=list)


def reap_stuck(dialer: Dialer, now: datetime, *, unplaced_after_s: float = 120.0) -> ReapReport:
    report = ReapReport()
    live_bound = now - timedelta(seconds=dialer.config.call_lease_s)
    unplaced_bound = now - timedelta(seconds=unplaced_after_s)
    live = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)
    with dialer.sessions() as session:
        rows = session.execute(
            sa.select(CallAttempt.id, CallAttempt.provider_call_id, CallAttempt.dialed_at)
            .where(
                CallAttempt.status.in_(live),
                sa.or_(
                    CallAttempt.dialed_at <= live_bound,
                    sa.and_(
                        CallAttempt.provider_call_id.is_(None),
                        CallAttempt.dialed_at <= unplaced_bound,
                    ),
                ),
            )
            .order_by(CallAttempt.dialed_at)
            .limit(BATCH)
        ).all()
    for attempt_id, call_id, dialed_at in rows:
        report.examined += 1
        if call_id is None:
            try:
                outcome = dialer.resolve_unplaced(attempt_id, since=dialed_at or now)
            except Exception:
                log.exception("reaper: attempt %s could not be resolved", attempt_id)
                outcome = "unresolved"
            (report.unresolved if outcome == "unresolved" else report.ended).append(attempt_id)
            continue
        try:
            info = dialer.provider.fetch(call_id)
        except TerminalProviderError:
            _end_unknown(dialer, attempt_id, now, "the provider does not know the call")
            report.ended.append(attempt_id)
            continue
        except ProviderError as exc:
            log.warning("reaper: attempt %s: provider lookup failed: %s", attempt_id, exc)
            report.unresolved.append(attempt_id)
            continue
        if dialer.apply_call_info(attempt_id, info):
            report.ended.append(attempt_id)
        else:
            report.still_live.append(attempt_id)
    if report.examined:
        log.warning(
            "reaper: examined %d stuck attempt(s): ended %s, live %s, unresolved %s",
            report.examined,
            report.ended,
            report.still_live,
            report.unresolved,
        )
    return report


def _end_unknown(dialer: Dialer, attempt_id: int, now: datetime, why: str) -> None:
    with dialer.sessions() as session, session.begin():
        ended = attempts.end(
            session, attempt_id, Outcome.UNKNOWN, now=now, error_code="reaped", error_message=why
        )
    if ended is not None:
        dialer.finished(ended)
