"""Finding the call of an attempt that is dialing with no call id, never dialing it again.

That happens when the provider's answer to a dial was lost (a timeout: the call may exist) or
when the process died between the claim and storing the call id. The provider's record
decides: a call from our number to the recipient since the dial is ours; none means no call
exists, and the attempt ends ``unknown`` so the retry policy decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import states
from dialer.calls.ending import Ender
from dialer.calls.ingesting import Ingestor
from dialer.calls.jobs import Freed
from dialer.calls.results import Resolution
from dialer.db.models import CallAttempt
from dialer.errors import ProviderError
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.telephony.base import CallInfo, TelephonyProvider

log = logging.getLogger(__name__)

#: How far before the dial a provider's call may have been created (clock skew), seconds.
CLOCK_SKEW_S = 60
AMBIGUOUS_DIAL = "ambiguous-dial"


@dataclass(frozen=True, slots=True)
class Resolved:
    resolution: Resolution
    freed: Freed | None = None


class Resolver:
    """Looks up calls of attempts that have no call id at the provider."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: TelephonyProvider,
        ingestor: Ingestor,
        ender: Ender,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._ingestor = ingestor
        self._ender = ender
        self._clock = clock

    def resolve(self, attempt_id: int, *, since: datetime) -> Resolved:
        """Find the call of ``attempt_id``, dialed at ``since``, or end the attempt ``unknown``.

        A lookup that fails, or that finds more than one candidate, leaves the attempt for the
        reaper to try again.
        """
        with self._sessions() as session:
            attempt = session.get(CallAttempt, attempt_id)
            if attempt is None or attempt.status is AttemptStatus.ENDED:
                return Resolved(Resolution.SETTLED)
            if attempt.provider_call_id is not None:
                return Resolved(Resolution.SETTLED)
            to, from_ = attempt.to_number, attempt.from_number
        try:
            found = self._candidates(attempt_id, to, from_, since)
        except ProviderError as exc:
            log.warning("attempt %s: lookup failed (%s); the reaper will retry", attempt_id, exc)
            return Resolved(Resolution.UNRESOLVED)
        if len(found) == 1:
            with self._sessions() as session, session.begin():
                states.record_dial(
                    session, attempt_id, self._provider.name, found[0].provider_call_id
                )
            return Resolved(Resolution.FOUND, self._ingestor.apply_call_info(attempt_id, found[0]))
        if len(found) > 1:
            log.error("attempt %s: %d candidate calls; left for the reaper", attempt_id, len(found))
            return Resolved(Resolution.UNRESOLVED)
        freed = self._ender.end(
            attempt_id,
            Outcome.UNKNOWN,
            error_code=AMBIGUOUS_DIAL,
            error_message="the dial timed out and the provider lists no such call",
        )
        return Resolved(Resolution.NO_CALL, freed)

    def _candidates(
        self, attempt_id: int, to: str, from_: str | None, since: datetime
    ) -> list[CallInfo]:
        """The provider's calls from ``from_`` to ``to`` since the dial that no other attempt
        has claimed: the window reaches back before this dial (clock skew), so earlier
        attempts' calls to the same number from the same caller fall in it."""
        if from_ is None:
            return []  # no call can have been placed without a number to place it from
        found = self._provider.find_calls(to, from_, since - timedelta(seconds=CLOCK_SKEW_S))
        if not found:
            return []
        with self._sessions() as session:
            taken = set(
                session.scalars(
                    sa.select(CallAttempt.provider_call_id).where(
                        CallAttempt.provider_call_id.in_([c.provider_call_id for c in found]),
                        CallAttempt.id != attempt_id,
                    )
                )
            )
        return [c for c in found if c.provider_call_id not in taken]
