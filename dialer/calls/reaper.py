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
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls.ending import Ender
from dialer.calls.ingesting import Ingestor
from dialer.calls.jobs import Freed
from dialer.calls.resolving import Resolver
from dialer.calls.results import ReapVerdict, Resolution
from dialer.db.models import CallAttempt
from dialer.errors import ProviderError, TerminalProviderError
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.telephony.base import TelephonyProvider

log = logging.getLogger(__name__)

#: Attempts examined per pass (the oldest first).
BATCH = 200
_LIVE = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)


@dataclass(slots=True)
class ReapReport:
    examined: int = 0
    verdicts: dict[int, ReapVerdict] = field(default_factory=dict)
    #: Slots the attempts it ended freed (the caller decides whether to refill them).
    freed: list[Freed] = field(default_factory=list)

    def of(self, verdict: ReapVerdict) -> list[int]:
        """The attempts given ``verdict``, in the order examined."""
        return [a for a, v in self.verdicts.items() if v is verdict]


class Reaper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: TelephonyProvider,
        resolver: Resolver,
        ingestor: Ingestor,
        ender: Ender,
        *,
        call_lease_s: float,
        unplaced_after_s: float = 120.0,
    ) -> None:
        """``call_lease_s``: how long a placed call may live before it is looked up (ring
        time + time limit + callback margin); ``unplaced_after_s``: how long a dialing attempt
        may go without a call id."""
        self._sessions = sessions
        self._provider = provider
        self._resolver = resolver
        self._ingestor = ingestor
        self._ender = ender
        self._call_lease_s = call_lease_s
        self._unplaced_after_s = unplaced_after_s

    def reap(self, now: datetime) -> ReapReport:
        """Look up the oldest :data:`BATCH` stuck attempts at the provider and apply its record."""
        report = ReapReport()
        for attempt_id, call_id, dialed_at in self._stuck(now):
            report.examined += 1
            verdict, freed = self._reap_one(attempt_id, call_id, dialed_at or now)
            report.verdicts[attempt_id] = verdict
            if freed is not None:
                report.freed.append(freed)
        if report.examined:
            log.warning(
                "reaper: examined %d stuck attempt(s): ended %s, live %s, unresolved %s",
                report.examined,
                report.of(ReapVerdict.ENDED),
                report.of(ReapVerdict.STILL_LIVE),
                report.of(ReapVerdict.UNRESOLVED),
            )
        return report

    def _stuck(self, now: datetime) -> list[tuple[int, str | None, datetime | None]]:
        live_bound = now - timedelta(seconds=self._call_lease_s)
        unplaced_bound = now - timedelta(seconds=self._unplaced_after_s)
        with self._sessions() as session:
            rows = session.execute(
                sa.select(CallAttempt.id, CallAttempt.provider_call_id, CallAttempt.dialed_at)
                .where(
                    CallAttempt.status.in_(_LIVE),
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
            )
            return [(row[0], row[1], row[2]) for row in rows]

    def _reap_one(
        self, attempt_id: int, call_id: str | None, dialed_at: datetime
    ) -> tuple[ReapVerdict, Freed | None]:
        if call_id is None:
            try:
                resolved = self._resolver.resolve(attempt_id, since=dialed_at)
            except Exception:
                log.exception("reaper: attempt %s could not be resolved", attempt_id)
                return ReapVerdict.UNRESOLVED, None
            if resolved.resolution is Resolution.UNRESOLVED:
                return ReapVerdict.UNRESOLVED, None
            if resolved.resolution is Resolution.FOUND and resolved.freed is None:
                return ReapVerdict.STILL_LIVE, None  # its call was found, and is still up
            return ReapVerdict.ENDED, resolved.freed
        try:
            info = self._provider.fetch(call_id)
        except TerminalProviderError:
            freed = self._ender.end(
                attempt_id,
                Outcome.UNKNOWN,
                error_code="reaped",
                error_message="the provider does not know the call",
            )
            return ReapVerdict.ENDED, freed
        except ProviderError as exc:
            log.warning("reaper: attempt %s: provider lookup failed: %s", attempt_id, exc)
            return ReapVerdict.UNRESOLVED, None
        freed = self._ingestor.apply_call_info(attempt_id, info)
        return (ReapVerdict.STILL_LIVE, None) if freed is None else (ReapVerdict.ENDED, freed)
