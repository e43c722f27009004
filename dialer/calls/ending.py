"""Ending an attempt: commit the end, then free its slots, and say what was freed.

The order matters: the end commits first, then the slots are released (idempotently), so a
reconcile running in between can never re-add a finished holder. What was freed comes back as
a :class:`~dialer.calls.jobs.Freed` value; whoever called decides whether to refill it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import states
from dialer.calls.guard import HealthGuard
from dialer.calls.jobs import Ended, Freed
from dialer.concurrency.keys import SlotScope
from dialer.concurrency.slots import CallSlots
from dialer.db.models import CallAttempt, Campaign
from dialer.errors import ProviderError
from dialer.observability import metrics
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.health import DEFAULT_STREAM_CONNECT_S

_ENDED_SCOPE = (
    sa.select(CallAttempt.campaign_id, Campaign.tenant_id, CallAttempt.from_number)
    .join(Campaign, Campaign.id == CallAttempt.campaign_id)
    .where(CallAttempt.id == sa.bindparam("attempt_id"), CallAttempt.status == AttemptStatus.ENDED)
)


def error_code_of(exc: ProviderError) -> str:
    """What an attempt refused by the provider stores as its ``error_code``."""
    return exc.code or (str(exc.status) if exc.status else type(exc).__name__)


class Ender:
    """Ends attempts and frees their slots."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        slots: CallSlots,
        clock: Callable[[], datetime],
        guard: HealthGuard | None = None,
    ) -> None:
        """``guard``: the health checks an end calls for run after its slots are free
        (without one, none run: tests of the slots alone)."""
        self._sessions = sessions
        self._slots = slots
        self._clock = clock
        self._guard = guard
        self._connect_s = (
            guard.limits.stream_connect_s if guard is not None else DEFAULT_STREAM_CONNECT_S
        )
        self._greets_first = guard is not None and guard.limits.greets_first

    def end(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        no_call: bool = False,
    ) -> Freed | None:
        """End the attempt with ``outcome`` in a transaction of its own (first end wins: None
        when it had ended already), then free its slots."""
        with self._sessions() as session, session.begin():
            ended = states.end(
                session,
                attempt_id,
                outcome,
                now=self._clock(),
                error_code=error_code,
                error_message=error_message,
                no_call=no_call,
                connect_s=self._connect_s,
                greets_first=self._greets_first,
            )
        if ended is None:
            return None
        metrics.call_ended(ended.outcome, retry=ended.retry)
        return self.free(ended)

    def refused(self, attempt_id: int, exc: ProviderError) -> Freed | None:
        """End an attempt whose call the provider refused for good: ``failed``, with its code."""
        return self.end(
            attempt_id,
            Outcome.FAILED,
            error_code=error_code_of(exc),
            error_message=str(exc),
            no_call=True,
        )

    def free(self, ended: Ended) -> Freed:
        """Free the slots of an end that committed (idempotent), then run the health checks
        it calls for (a campaign may pause itself, a number be quarantined)."""
        self._slots.release(ended.attempt_id, ended.scope)
        checks = ended.checks
        if self._guard is not None and checks is not None and checks.needed:
            self._guard.check(checks)
        return Freed(ended.attempt_id, ended.campaign_id, ended.outcome)

    def free_if_ended(self, session: Session, attempt_id: int) -> None:
        """Free the slots an ended attempt may still hold (a dial task repeated after the end:
        its slot may have been taken again by the task's own acquire)."""
        row = session.execute(_ENDED_SCOPE, {"attempt_id": attempt_id}).one_or_none()
        if row is not None:
            self._slots.release(attempt_id, SlotScope(*row))
