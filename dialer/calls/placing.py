"""Placing one attempt's call, at most once.

The logic behind the dial task and a refill's first call; the entry points only call in.
Order of operations for a dial task, and why:

1. Lock the attempt's row and read its job, in one statement; a task for an attempt that is
   no longer queued does nothing (a redelivered or duplicated task), except free a slot an
   ended attempt may still hold.
2. Screen it again (:func:`~dialer.policy.screen.screen`): a suppression, a pause or a closing
   window since the claim ends it unstarted, exactly as dispatch would have. When a frequency
   cap holds, the number's contacts are read under its (tenant, number) lock, held until the
   commit that records this call among them (:mod:`dialer.calls.contacts`): two campaigns
   dialing one number at once cannot both pass a cap that allows one call. An opt-out that
   commits after this read ends the recipient, whose row step 4 locks: the claim then finds it
   ended and the attempt ends unstarted (:func:`~dialer.calls.states.opt_out`).
3. Hold its slots for the whole call and take its pace (:class:`~dialer.calls.gate.StartGate`),
   still holding the row: a redelivered task waits, then finds the attempt claimed. If it must
   wait, its task comes back after that wait, recorded as handed off when it falls due (the
   outbox re-sends only a task no worker started ``lost_task_timeout_s`` after that).
4. Compare-and-set the attempt from queued to dialing (commit): from here on no other task
   can dial it.
5. Ask the provider for the call, then store its call id at once.
   4xx: no call exists; the attempt fails with the provider's code, slot freed, retry policy
   decides. 429/5xx: no call exists; the attempt goes back to the queue after a backoff.
   Timeout: the call may exist; never dial again blindly, look the call up first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import contacts, facts, statements, states
from dialer.calls.config import CallConfig
from dialer.calls.ending import Ender
from dialer.calls.gate import StartGate
from dialer.calls.jobs import DialJob, Freed
from dialer.calls.resolving import Resolver
from dialer.calls.results import DialResult, Resolution
from dialer.db.bulk import is_postgres
from dialer.db.models import Campaign
from dialer.errors import (
    AmbiguousProviderError,
    RetryableProviderError,
    TerminalProviderError,
)
from dialer.observability import context, metrics
from dialer.policy.attempt_state import AttemptStatus, RecipientStatus
from dialer.policy.frequency import FrequencyCaps
from dialer.policy.screen import CallNow, Decision, RecipientFacts, ScreenReason, Terminal, screen
from dialer.queue.base import TaskQueue
from dialer.telephony.base import CallRequest, TelephonyProvider

log = logging.getLogger(__name__)

#: An attempt id no row has (ids start at 1): what :meth:`Placer.warm` works on.
NO_ATTEMPT = 0
#: What an ambiguous dial's resolution means for the dial.
_RESOLVED = {
    Resolution.FOUND: DialResult.DIALED,
    Resolution.SETTLED: DialResult.DIALED,
    Resolution.NO_CALL: DialResult.UNKNOWN,
    Resolution.UNRESOLVED: DialResult.UNRESOLVED,
}


#: The screen's decision for an attempt whose recipient an opt-out ended while it was held.
_OPTED_OUT = Terminal(RecipientStatus.SUPPRESSED, ScreenReason.SUPPRESSED)


@dataclass(frozen=True, slots=True)
class Dialed:
    """What a dial did, what it freed (the entry point decides whether to refill), and, when
    the screen turned the attempt away, the screen's decision."""

    result: DialResult
    freed: Freed | None = None
    decision: Decision | None = None


class Placer:
    """Places the calls of queued attempts (dial tasks) and of claims started in place."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        gate: StartGate,
        provider: TelephonyProvider,
        ender: Ender,
        resolver: Resolver,
        queue: TaskQueue,
        clock: Callable[[], datetime],
        config: CallConfig,
    ) -> None:
        self._sessions = sessions
        self._gate = gate
        self._provider = provider
        self._ender = ender
        self._resolver = resolver
        self._queue = queue
        self._clock = clock
        self._config = config

    def dial(self, attempt_id: int) -> Dialed:
        """Run one dial task (see the module docstring). Nothing is written unless the claim
        goes ahead, the screen ends the attempt, or the task is sent again to wait (its
        hand-off recorded, as dispatch records the first)."""
        with self._sessions() as session, session.begin():
            now = self._clock()
            queued = _lock_queued(session, attempt_id, now, self._config.default_caps)
            if queued is None:
                self._ender.free_if_ended(session, attempt_id)
                return Dialed(DialResult.NOT_QUEUED)
            job = queued.job
            context.add(run_id=queued.campaign.current_run_id, **job.log_ids)
            recipient = queued.recipient
            if queued.caps.active:
                tenant_id = queued.campaign.tenant_id
                contacts.lock_numbers(session, tenant_id, [job.to])
                history = contacts.histories(session, tenant_id, [job.to], queued.caps, now)
                if job.to in history:
                    recipient = replace(recipient, contacts=history[job.to])
            about = facts.campaign_facts(queued.campaign, caps=queued.caps)
            decision = screen(recipient, about, now)
            turned_away, waiting = None, None
            if not isinstance(decision, CallNow):
                turned_away = states.not_dialed(session, attempt_id, decision, now)
            else:
                waiting = self._gate.admit(job)
                if waiting is not None:
                    result, countdown_s = waiting
                    if result is not DialResult.SLOTS_LOST:
                        # A new hand-off, due after its countdown: without this record the
                        # outbox would take a dial that waits that long for lost and send a
                        # second task.
                        due = now + timedelta(seconds=countdown_s)
                        states.handed_off(session, attempt_id, due=due)
                        self._queue.dial([attempt_id], countdown_s)
                        return Dialed(result)
                elif not states.claim(session, attempt_id, job.recipient_id, now):
                    # Its recipient ended while this dial held the attempt (an opt-out that
                    # committed after the screen read the list): ended unstarted, slots freed.
                    decision = _OPTED_OUT
                    turned_away = states.not_dialed(session, attempt_id, decision, now)
                    if turned_away.ended is None:
                        return Dialed(DialResult.NOT_QUEUED)
                else:
                    contacts.record(session, queued.campaign.tenant_id, [(attempt_id, job.to)], now)
        if waiting is not None:
            # The slots' store lost its holders: rebuilt now the row lock is gone, and the
            # task comes back at once (or after a slot retry if the rebuild failed).
            retry_s = 0.0 if self._gate.rebuild() else self._config.slot_retry_s
            self._queue.dial([attempt_id], retry_s)
            return Dialed(DialResult.SLOTS_LOST)
        if turned_away is not None:
            ended = turned_away.ended
            if ended is not None:
                metrics.call_ended(ended.outcome, retry=ended.retry)
            freed = None if ended is None else self._ender.free(ended)
            return Dialed(DialResult.SCREENED_OUT, freed, decision)
        return self._place(job)

    def place_started(self, job: DialJob) -> Dialed:
        """Place the call of an attempt a dispatch claimed straight into dialing (its pace
        taken), right after that commit.

        Its slot is still on the queue lease: extended to the call's first. If the slot was
        lost in between (Redis restarted) and none is free, no call goes out: the attempt goes
        back to the queue, and its dial task waits for a slot.
        """
        if not self._gate.hold_slot_rebuilding(job):
            with self._sessions() as session, session.begin():
                countdown_s = states.requeue(
                    session,
                    job.attempt_id,
                    now=self._clock(),
                    refused=False,
                    backoff_s=self._config.slot_retry_s,
                )
            if countdown_s is not None:
                self._queue.dial([job.attempt_id], countdown_s)
            return Dialed(DialResult.WAITING_FOR_SLOT)
        return self._place(job)

    def warm(self) -> None:
        """Compile the statements a dial starts with (for an attempt that cannot exist)."""
        self.dial(NO_ATTEMPT)

    def _place(self, job: DialJob) -> Dialed:
        """Ask the provider for the call of ``job``, claimed (committed) just before."""
        claimed_at = time.perf_counter()
        if job.from_ is None:
            refused = TerminalProviderError("the attempt has no number to call from")
            return Dialed(DialResult.REFUSED, self._ender.refused(job.attempt_id, refused))
        request = CallRequest(
            attempt_id=str(job.attempt_id),
            campaign_id=job.campaign_id,
            to=job.to,
            from_=job.from_,
            ring_timeout_s=self._config.ring_timeout_s,
            time_limit_s=self._config.time_limit_s,
            machine_detection=self._config.machine_detection,
            machine_detection_timeout_s=job.machine_detection_timeout_s,
        )
        sent_at = self._clock()
        try:
            placed = self._provider.place_call(request)
        except TerminalProviderError as exc:
            log.warning(
                "attempt %s: provider refused the call: %s (%s)", job.attempt_id, exc, exc.code
            )
            return Dialed(DialResult.REFUSED, self._ender.refused(job.attempt_id, exc))
        except RetryableProviderError as exc:
            return self._provider_busy(job, exc)
        except AmbiguousProviderError as exc:
            log.warning(
                "attempt %s: dial outcome unknown (%s); looking the call up", job.attempt_id, exc
            )
            resolved = self._resolver.resolve(job.attempt_id, since=sent_at)
            return Dialed(_RESOLVED[resolved.resolution], resolved.freed)
        metrics.provider_accepted(time.perf_counter() - claimed_at)
        with self._sessions() as session, session.begin():
            states.record_dial(
                session, job.attempt_id, self._provider.name, placed.provider_call_id
            )
        return Dialed(DialResult.DIALED)

    def _provider_busy(self, job: DialJob, exc: RetryableProviderError) -> Dialed:
        """No call exists: back to the queue after a backoff, or, after too many refusals,
        failed."""
        with self._sessions() as session, session.begin():
            countdown_s = states.requeue(
                session,
                job.attempt_id,
                now=self._clock(),
                backoff_s=self._config.provider_backoff_s,
            )
        if countdown_s is not None:
            self._queue.dial([job.attempt_id], countdown_s)
            return Dialed(DialResult.PROVIDER_BUSY)
        return Dialed(DialResult.REFUSED, self._ender.refused(job.attempt_id, exc))


@dataclass(frozen=True, slots=True)
class _Queued:
    """A queued attempt whose row this transaction locked: its job, its screen facts and
    the frequency caps its call obeys."""

    job: DialJob
    campaign: Campaign
    recipient: RecipientFacts
    caps: FrequencyCaps


def _lock_queued(
    session: Session, attempt_id: int, now: datetime, default_caps: FrequencyCaps
) -> _Queued | None:
    """Lock a still-queued attempt's row, with its campaign, limits and recipient facts, in
    one statement; None if it is not queued (or does not exist)."""
    stmt = statements.JOB_LOCK if is_postgres(session) else statements.JOB_READ
    row = session.execute(stmt, {"attempt_id": attempt_id, "now": now}).one_or_none()
    if row is None:
        return None
    attempt, campaign, tenant_limit, caller_limit, time_zone, region, suppressed = row[:7]
    tenant_cps, consented, *tenant_caps = row[7:]
    if attempt.status is not AttemptStatus.QUEUED:
        return None
    job = DialJob.of(
        campaign,
        attempt_id=attempt.id,
        recipient_id=attempt.recipient_id,
        to=attempt.to_number,
        from_=attempt.from_number,
        tenant_limit=tenant_limit,
        caller_limit=caller_limit,
        tenant_cps=tenant_cps,
    )
    recipient = RecipientFacts(
        attempt.to_number, time_zone, bool(suppressed), bool(consented), region=region
    )
    caps = contacts.caps_of(
        (tenant_caps[0], tenant_caps[1], tenant_caps[2]), campaign.frequency_caps, default_caps
    )
    return _Queued(job, campaign, recipient, caps)
