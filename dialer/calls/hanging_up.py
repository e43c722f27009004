"""Hanging up a campaign's calls in flight (a stop that asks for it), through the provider.

Nothing here ends an attempt by itself: each hang-up's answer (the provider's record of the
call, ended) is ingested as a lookup (:meth:`~dialer.calls.ingesting.Ingestor.apply_call_info`),
exactly as the call's own ``completed`` callback would be, and whichever of the two comes
first ends the attempt; its slots are freed by that end, its recipient settled by the one
writer of states. A call the provider had already ended answers nothing, and its callback (or
the sweep) ends it as any other.

A dial under way when the stop came (dialing, no call id yet) is waited for, a bounded while
(:data:`UNPLACED_WAIT_S`, longer than a provider request may take): once its call id is
stored, that call is hung up too. One whose request never settles is the reaper's, as any.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls.ingesting import Ingestor
from dialer.calls.jobs import Freed
from dialer.db.models import CallAttempt
from dialer.errors import ProviderError
from dialer.policy.attempt_state import AttemptStatus
from dialer.telephony.base import TelephonyProvider

log = logging.getLogger(__name__)

#: Attempts whose call the provider may have up.
_PLACED = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)
#: How long dials under way at the hang-up are waited for, and how often they are looked at,
#: in seconds: longer than a provider request may take (the Twilio adapter's HTTP timeout is
#: 10 s).
UNPLACED_WAIT_S = 15.0
UNPLACED_POLL_S = 0.5


@dataclass(slots=True)
class HangUpReport:
    """What a campaign's hang-up did: calls asked to end, the attempts that ended by the
    answers (their slots freed), the calls that failed to hang up, and the dials still under
    way without a call id when the wait for them ended (their calls, if any, finish on their
    own)."""

    asked: int = 0
    freed: list[Freed] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unplaced: int = 0


class HangUps:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: TelephonyProvider,
        ingestor: Ingestor,
        *,
        sleep: Callable[[float], None] = time.sleep,
        unplaced_wait_s: float = UNPLACED_WAIT_S,
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._ingestor = ingestor
        self._sleep = sleep
        self._unplaced_wait_s = unplaced_wait_s

    def campaign(
        self, campaign_id: str, *, freed: Callable[[Freed], None] | None = None
    ) -> HangUpReport:
        """Ask the provider to end every call of the campaign that it may have up; ``freed``
        is told of each attempt that ended by the answer."""
        report = HangUpReport()
        unplaced = self._pass(CallAttempt.campaign_id == campaign_id, report, freed)
        waited_s = 0.0
        while unplaced and waited_s < self._unplaced_wait_s:
            self._sleep(UNPLACED_POLL_S)
            waited_s += UNPLACED_POLL_S
            unplaced = self._pass(CallAttempt.id.in_(unplaced), report, freed)
        report.unplaced = len(unplaced)
        log.info(
            "campaign %s: hung up %d call(s), %d ended by the answer, %d failed, %d dial(s) "
            "under way without a call id",
            campaign_id, report.asked, len(report.freed), len(report.failed), report.unplaced,
        )  # fmt: skip
        return report

    def _pass(
        self,
        which: sa.ColumnElement[bool],
        report: HangUpReport,
        freed: Callable[[Freed], None] | None,
    ) -> list[int]:
        """Hang up the placed calls among the attempts ``which`` selects that the provider may
        have up; returns those still dialing without a call id."""
        with self._sessions() as session:
            rows = session.execute(
                sa.select(CallAttempt.id, CallAttempt.provider_call_id)
                .where(which, CallAttempt.status.in_(_PLACED))
                .order_by(CallAttempt.id)
            ).all()
        unplaced = []
        for attempt_id, call_id in rows:
            if call_id is None:
                unplaced.append(attempt_id)
                continue
            report.asked += 1
            try:
                info = self._provider.hang_up(call_id)
            except ProviderError as exc:
                log.warning("attempt %s: hang-up of call %s failed: %s", attempt_id, call_id, exc)
                report.failed.append(attempt_id)
                continue
            ended = None if info is None else self._ingestor.apply_call_info(attempt_id, info)
            if ended is not None:
                report.freed.append(ended)
                if freed is not None:
                    freed(ended)
        return unplaced
