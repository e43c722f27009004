"""Hanging up a campaign's calls in flight (a stop that asks for it), through the provider.

Nothing here ends an attempt by itself: each hang-up's answer (the provider's record of the
call, ended) is ingested as a lookup (:meth:`~dialer.calls.ingesting.Ingestor.apply_call_info`),
exactly as the call's own ``completed`` callback would be, and whichever of the two comes
first ends the attempt; its slots are freed by that end, its recipient settled by the one
writer of states. A call the provider had already ended answers nothing, and its callback (or
the sweep) ends it as any other.
"""

from __future__ import annotations

import logging
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


@dataclass(slots=True)
class HangUpReport:
    """What a campaign's hang-up did: calls asked to end, the attempts that ended by the
    answers (their slots freed), the calls that failed to hang up, and the dials under way
    with no call id yet (their calls, if any, finish on their own)."""

    asked: int = 0
    freed: list[Freed] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unplaced: int = 0


class HangUps:
    def __init__(
        self, sessions: sessionmaker[Session], provider: TelephonyProvider, ingestor: Ingestor
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._ingestor = ingestor

    def campaign(
        self, campaign_id: str, *, freed: Callable[[Freed], None] | None = None
    ) -> HangUpReport:
        """Ask the provider to end every call of the campaign that it may have up; ``freed``
        is told of each attempt that ended by the answer."""
        report = HangUpReport()
        with self._sessions() as session:
            rows = session.execute(
                sa.select(CallAttempt.id, CallAttempt.provider_call_id)
                .where(
                    CallAttempt.campaign_id == campaign_id,
                    CallAttempt.status.in_(_PLACED),
                )
                .order_by(CallAttempt.id)
            ).all()
        for attempt_id, call_id in rows:
            if call_id is None:
                report.unplaced += 1
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
        log.info(
            "campaign %s: hung up %d call(s), %d ended by the answer, %d failed, %d dial(s) "
            "under way without a call id",
            campaign_id, report.asked, len(report.freed), len(report.failed), report.unplaced,
        )  # fmt: skip
        return report
