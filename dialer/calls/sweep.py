"""The provider's truth about calls we have heard nothing of, asked for in bulk.

A terminal callback that never arrives (an API restart, a deploy, a proxy hiccup: Twilio does
not retry status callbacks by default) would leave its call's slot held until the call's
lease ran out, about an hour. The sweep closes that gap cheaply:

1. our calls in flight that have been quiet for :data:`QUIET_S` (placed, with a call id);
2. the provider's list of the account's live calls (:meth:`TelephonyProvider.live_calls`),
   a few pages whatever the number of calls;
3. each of our quiet calls missing from that list is fetched, and its record ingested exactly
   as its callback would have been (same idempotent path, same counters, same retry policy).

A call still live costs nothing beyond the list; only calls that ended unheard are fetched.
Run every ``DIALER_PROVIDER_SWEEP_S``, a lost terminal callback frees its slot within that
period plus :data:`QUIET_S` plus one sweep. A call that ended moments ago and whose callback
is still on its way may be fetched too: its callback then finds the attempt ended, a repeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls.ingesting import Ingestor
from dialer.calls.jobs import Freed
from dialer.db.models import CallAttempt
from dialer.errors import ProviderError
from dialer.policy.attempt_state import AttemptStatus
from dialer.telephony.base import TelephonyProvider

log = logging.getLogger(__name__)

#: How long a call must have been quiet (no state change) to be swept, in seconds: a callback
#: normally arrives well within it, so calls just heard from cost no lookup.
QUIET_S = 2.0
#: Most calls fetched one by one per sweep (the oldest first); the rest wait for the next.
MOST_FETCHED = 500
_PLACED = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)


@dataclass(slots=True)
class SweepReport:
    #: Our quiet calls in flight, looked for in the provider's list.
    quiet: int = 0
    #: Requests the sweep made: pages of the live list, then one per call fetched.
    requests: int = 0
    #: Calls fetched because the provider no longer lists them as live.
    fetched: int = 0
    #: Attempts the provider's record ended, and the slots that freed.
    ended: list[int] = field(default_factory=list)
    freed: list[Freed] = field(default_factory=list)
    #: Lookups that failed (the next sweep tries again).
    failed: int = 0


class Sweeper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: TelephonyProvider,
        ingestor: Ingestor,
        *,
        sees_every_call: bool = True,
    ) -> None:
        """``sees_every_call``: this process's provider knows every call of the fleet (an
        account at a real provider). The in-process simulator of a distributed fleet knows
        only the calls its own process placed, and a scheduler places none: no sweep then."""
        self._sessions = sessions
        self._provider = provider
        self._ingestor = ingestor
        self._sees_every_call = sees_every_call

    def sweep(self, now: datetime) -> SweepReport:
        """Ask the provider about our quiet calls; ingest the end of those it ended."""
        report = SweepReport()
        if not self._sees_every_call:
            return report
        quiet = self._quiet(now)
        report.quiet = len(quiet)
        if not quiet:
            return report
        try:
            live = self._provider.live_calls()
        except ProviderError as exc:
            log.warning("sweep: the provider's live calls could not be listed: %s", exc)
            report.failed += 1
            return report
        report.requests += live.requests
        for attempt_id, call_id in quiet:
            if call_id in live.ids or report.fetched >= MOST_FETCHED:
                continue
            report.fetched += 1
            report.requests += 1
            self._settle(attempt_id, call_id, report)
        log.log(
            logging.WARNING if report.ended or report.failed else logging.INFO,
            "sweep: %d quiet call(s), %d request(s), %d fetched: ended %s unheard, "
            "%d lookup(s) failed",
            report.quiet,
            report.requests,
            report.fetched,
            report.ended,
            report.failed,
        )
        return report

    def _quiet(self, now: datetime) -> list[tuple[int, str]]:
        """Our placed calls (with a call id) whose last state change is :data:`QUIET_S` old,
        the oldest first."""
        before = now - timedelta(seconds=QUIET_S)
        heard = sa.func.coalesce(CallAttempt.answered_at, CallAttempt.dialed_at)
        with self._sessions() as session:
            rows = session.execute(
                sa.select(CallAttempt.id, CallAttempt.provider_call_id)
                .where(
                    CallAttempt.status.in_(_PLACED),
                    CallAttempt.provider_call_id.is_not(None),
                    heard <= before,
                )
                .order_by(heard)
            )
            return [(attempt_id, str(call_id)) for attempt_id, call_id in rows]

    def _settle(self, attempt_id: int, call_id: str, report: SweepReport) -> None:
        try:
            info = self._provider.fetch(call_id)
        except ProviderError as exc:
            # A call the provider does not know is the reaper's, at the end of its lease.
            log.warning("sweep: attempt %s: call %s lookup failed: %s", attempt_id, call_id, exc)
            report.failed += 1
            return
        freed = self._ingestor.apply_call_info(attempt_id, info)
        if freed is not None:
            report.ended.append(attempt_id)
            report.freed.append(freed)
