"""Placing one attempt's call, at most once, and taking in what the provider reports.

This is the logic behind the dial task and the webhooks; the Celery task bodies and the API
routes only call into it. Order of operations for a dial, and why:

1. Read the attempt; a task for an attempt that is no longer queued does nothing (a
   redelivered or duplicated task), except free a slot an ended attempt may still hold.
2. Extend the slot lease to cover the whole call (ring + time limit + callback delay); if the
   queue lease lapsed, acquire again (all layers or none) or come back later.
3. Take the calls-per-second pace; if it says wait, come back after that countdown.
4. Compare-and-set the attempt from queued to dialing (commit): from here on no other task
   can dial it. Suppression, campaign status and calling hours are checked again here.
5. Ask the provider for the call, then store its call id at once.
   4xx: no call exists; the attempt fails with the provider's code, slot freed, retry policy
   decides. 429/5xx: no call exists; the attempt goes back to the queue after a backoff.
   Timeout: the call may exist; never dial again blindly, look the call up first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.concurrency.keys import SlotScope, cps_rates, holder_id
from dialer.concurrency.rate.base import CallRateLimiter, Rate
from dialer.concurrency.semaphore.base import LeaseSemaphore
from dialer.db.models import CallAttempt, Campaign
from dialer.errors import (
    AmbiguousProviderError,
    ProviderError,
    RetryableProviderError,
    TerminalProviderError,
)
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.services import attempts
from dialer.services.attempts import Claimed, DialJob, Ended
from dialer.telephony.base import CallInfo, CallRequest, CallStatus, TelephonyProvider
from dialer.telephony.events import (
    MACHINE_ANSWERS,
    EventKind,
    ProviderEvent,
    outcome_for,
    parse_event,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DialConfig:
    ring_timeout_s: int = 30
    #: Longest call once answered, in seconds (Twilio ``time_limit``).
    time_limit_s: int = 3600
    #: Slack for late callbacks in the slot lease of a live call, in seconds.
    callback_margin_s: int = 120
    machine_detection: str = "DetectMessageEnd"
    #: Provider account the pace is shared by (e.g. ``twilio:AC...``) and its calls per second.
    account: str = "simulator"
    account_cps: float = 1.0
    caller_cps: float | None = None
    #: Seconds before a dial refused with 429/5xx is tried again (times the refusals so far).
    provider_backoff_s: float = 2.0
    #: Seconds before a dial that found no free slot looks again.
    slot_retry_s: float = 1.0
    #: A pace wait up to this long (seconds) is waited out in the dial's thread, not by
    #: sending its task again with a countdown.
    pace_wait_here_s: float = 0.05
    #: Count an AMD verdict of ``unknown`` as voicemail instead of human.
    amd_unknown_as_voicemail: bool = False

    @property
    def call_lease_s(self) -> float:
        return float(self.ring_timeout_s + self.time_limit_s + self.callback_margin_s)


@dataclass(frozen=True, slots=True)
class WebhookUrls:
    """Where the provider reaches us for one attempt (our own id in the path)."""

    base_url: str

    def for_attempt(self, attempt_id: int, campaign_id: str) -> tuple[str, str, str]:
        root = f"{self.base_url.rstrip('/')}/webhooks/twilio/{attempt_id}"
        query = f"?campaign={campaign_id}"
        return f"{root}/twiml{query}", f"{root}/status{query}", f"{root}/amd{query}"


#: An attempt id no row has (ids start at 1): what :meth:`Dialer.warm` works on.
NO_ATTEMPT = 0
_WARM_EVENT = ProviderEvent(kind="status", provider_call_id="", call_status=CallStatus.INITIATED)

#: Re-send a dial task for ``attempt_id`` after ``countdown_s`` seconds.
Redial = Callable[[int, float], None]
#: Called after commit for every attempt that ended (release is done already).
OnEnded = Callable[[Ended], None]


class Dialer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        semaphore: LeaseSemaphore,
        pacer: CallRateLimiter,
        provider: TelephonyProvider,
        urls: WebhookUrls,
        *,
        redial: Redial,
        on_ended: OnEnded,
        clock: Callable[[], datetime],
        config: DialConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions = sessions
        self.semaphore = semaphore
        self.pacer = pacer
        self.provider = provider
        self.urls = urls
        self.redial = redial
        self.on_ended = on_ended
        self.clock = clock
        self.config = config or DialConfig()
        self.sleep = sleep

    # -- dialing -------------------------------------------------------------------------

    def warm(self) -> None:
        """Compile the statements a dial and a callback start with, and load the semaphore's
        scripts, against an attempt that cannot exist (nothing is written)."""
        self.dial(NO_ATTEMPT)
        self._ingest_once(NO_ATTEMPT, _WARM_EVENT, ask_verdict=False)
        self.semaphore.count(SlotScope("", "").campaign_key(self.semaphore.prefix))

    def dial(self, attempt_id: int) -> str:
        """Run one dial task; returns what happened, for logs and tests.

        One transaction from reading the job to the claim, the attempt's row locked: the slot
        and the pace are taken inside it, so a redelivered task waits and then finds the
        attempt claimed. Nothing is written unless the claim goes ahead or ends the attempt.
        """
        with self.sessions() as session, session.begin():
            locked = attempts.lock_queued(session, attempt_id)
            if locked is None:
                self._release_if_ended(session, attempt_id)
                return "not-queued"
            waiting = self._slot_and_pace(locked.job)
            if waiting is not None:
                reason, countdown_s = waiting
                self.redial(attempt_id, countdown_s)
                return reason
            claimed = attempts.claim_locked(session, locked, now=self.clock())
        if not isinstance(claimed, Claimed):
            if claimed.ended is not None:
                self.finished(claimed.ended)
            return claimed.reason
        return self._place(claimed.job)

    def _slot_and_pace(self, job: DialJob) -> tuple[str, float] | None:
        """Hold the job's slot for the call's lease and take its dial pace.

        None when the call may go now, else (why not, seconds until the task tries again).
        """
        if not self._hold_slot(job):
            return "waiting-for-slot", self.config.slot_retry_s
        wait_s = self._pace(job)
        if wait_s > 0:
            return "paced", wait_s
        return None

    def _pace(self, job: DialJob) -> float:
        """Take the job's pace: 0.0 when taken, else the seconds to wait.

        A wait of up to ``pace_wait_here_s`` is waited out here, once: at a high pace calls
        that start together are spaced by milliseconds, far less than a task sent again. The
        caller's transaction keeps its row locks meanwhile (the attempt's, or a claim's
        recipients', which other claims skip), for that long at most.
        """
        rates = self._rates(job)
        wait_s = self.pacer.try_acquire(rates)
        if 0 < wait_s <= self.config.pace_wait_here_s:
            self.sleep(wait_s)
            wait_s = self.pacer.try_acquire(rates)
        return wait_s

    def _hold_slot(self, job: DialJob) -> bool:
        """Extend the job's slot lease to the whole call, or take the slot again if the lease
        lapsed (all layers or none); False when no slot is free."""
        holder = holder_id(job.attempt_id)
        keys = job.scope.keys(self.semaphore.prefix)
        if self.semaphore.renew(holder, keys, self.config.call_lease_s):
            return True
        return bool(self.semaphore.acquire(holder, job.limits(), self.config.call_lease_s))

    def _rates(self, job: DialJob) -> tuple[Rate, ...]:
        return cps_rates(
            self.config.account,
            job.from_,
            account_cps=self.config.account_cps,
            caller_cps=self.config.caller_cps,
        )

    def take_pace(self, job: DialJob) -> bool:
        """Take the pace of a call about to start; False (nothing taken) when it must wait."""
        return self._pace(job) == 0

    def place_started(self, job: DialJob) -> str:
        """Place the call of an attempt a dispatch claimed straight into dialing (its pace
        taken, see :class:`~dialer.services.dispatch.StartHere`), right after that commit.

        Its slot is still on the queue lease: extended to the call's first. If the slot was
        lost in between (Redis restarted) and none is free, no call goes out: the attempt goes
        back to the queue, and its dial task waits for a slot.
        """
        if not self._hold_slot(job):
            with self.sessions() as session, session.begin():
                requeued = attempts.requeue(
                    session, job.attempt_id, now=self.clock(), refused=False
                )
            if requeued:
                self.redial(job.attempt_id, self.config.slot_retry_s)
            return "waiting-for-slot"
        return self._place(job)

    def _place(self, job: DialJob) -> str:
        answer, status, amd = self.urls.for_attempt(job.attempt_id, job.campaign_id)
        request = CallRequest(
            attempt_id=str(job.attempt_id),
            to=job.to,
            from_=job.from_,
            answer_url=answer,
            status_callback_url=status,
            amd_callback_url=amd,
            ring_timeout_s=self.config.ring_timeout_s,
            time_limit_s=self.config.time_limit_s,
            machine_detection=self.config.machine_detection,
            machine_detection_timeout_s=job.machine_detection_timeout_s,
        )
        sent_at = self.clock()
        try:
            placed = self.provider.place_call(request)
        except TerminalProviderError as exc:
            log.warning(
                "attempt %s: provider refused the call: %s (%s)", job.attempt_id, exc, exc.code
            )
            self._end(job.attempt_id, Outcome.FAILED, exc)
            return "failed"
        except RetryableProviderError as exc:
            with self.sessions() as session, session.begin():
                requeued = attempts.requeue(session, job.attempt_id, now=self.clock())
                tries = session.scalar(
                    sa.select(CallAttempt.provider_retries).where(CallAttempt.id == job.attempt_id)
                )
            if requeued:
                self.redial(job.attempt_id, self.config.provider_backoff_s * (tries or 1))
                return "provider-busy"
            self._end(job.attempt_id, Outcome.FAILED, exc)
            return "failed"
        except AmbiguousProviderError as exc:
            log.warning(
                "attempt %s: dial outcome unknown (%s); looking the call up", job.attempt_id, exc
            )
            return self.resolve_unplaced(job.attempt_id, since=sent_at)
        with self.sessions() as session, session.begin():
            attempts.record_dial(
                session,
                job.attempt_id,
                self.provider.name,
                placed.provider_call_id,
                now=self.clock(),
            )
        return "dialed"

    def _end(self, attempt_id: int, outcome: Outcome, exc: ProviderError | None = None) -> None:
        with self.sessions() as session, session.begin():
            ended = attempts.end(
                session,
                attempt_id,
                outcome,
                now=self.clock(),
                error_code=(exc.code or (str(exc.status) if exc.status else type(exc).__name__))
                if exc
                else None,
                error_message=str(exc) if exc else None,
            )
        if ended is not None:
            self.finished(ended)

    def resolve_unplaced(self, attempt_id: int, *, since: datetime) -> str:
        """A dialing attempt with no call id: find its call at the provider, or end it unknown.

        Never re-dials: if the provider lists a call from our number to the recipient since the
        request went out, that is ours; if it lists none, no call exists and the attempt ends
        ``unknown`` so the retry policy decides (the lookup failing leaves it for the reaper).
        """
        with self.sessions() as session:
            attempt = session.get(CallAttempt, attempt_id)
            if attempt is None or attempt.status is AttemptStatus.ENDED:
                return "already-ended"
            if attempt.provider_call_id is not None:
                return "dialed"
            to, from_ = attempt.to_number, attempt.from_number or ""
        try:
            found = self.provider.find_calls(to, from_, since - timedelta(seconds=60))
        except ProviderError as exc:
            log.warning("attempt %s: lookup failed (%s); the reaper will retry", attempt_id, exc)
            return "unresolved"
        if found:
            # The window reaches back before this dial (clock skew), so earlier attempts'
            # calls to the same number from the same caller fall in it: those are not ours.
            with self.sessions() as session:
                taken = set(
                    session.scalars(
                        sa.select(CallAttempt.provider_call_id).where(
                            CallAttempt.provider_call_id.in_([c.provider_call_id for c in found]),
                            CallAttempt.id != attempt_id,
                        )
                    )
                )
            found = [c for c in found if c.provider_call_id not in taken]
        if len(found) == 1:
            with self.sessions() as session, session.begin():
                attempts.record_dial(
                    session,
                    attempt_id,
                    self.provider.name,
                    found[0].provider_call_id,
                    now=self.clock(),
                )
            self.apply_call_info(attempt_id, found[0])
            return "dialed"
        if len(found) > 1:
            log.error("attempt %s: %d candidate calls; left for the reaper", attempt_id, len(found))
            return "unresolved"
        with self.sessions() as session, session.begin():
            ended = attempts.end(
                session,
                attempt_id,
                Outcome.UNKNOWN,
                now=self.clock(),
                error_code="ambiguous-dial",
                error_message="the dial timed out and the provider lists no such call",
            )
        if ended is not None:
            self.finished(ended)
        return "unknown"

    def apply_call_info(self, attempt_id: int, info: CallInfo) -> bool:
        """Apply what the provider's record says (reaper, reconcile): True if the attempt ended."""
        if not info.status.is_terminal:
            return False
        event = ProviderEvent(
            kind="status",
            provider_call_id=info.provider_call_id,
            call_status=info.status,
            sequence_number=None,
            answered_by=info.answered_by,
            duration_s=info.duration_s,
            timestamp=info.ended_at,
        )
        return self._ingest(attempt_id, event) is not None

    # -- events --------------------------------------------------------------------------

    def deliver(self, attempt_id: str, kind: EventKind, params: Mapping[str, str]) -> None:
        """The :class:`~dialer.telephony.events.EventSink` of the simulator and the webhooks."""
        event = parse_event(kind, params)
        self._ingest(int(attempt_id), event, ask_verdict=True)
        if event.kind == "amd" and event.answered_by in MACHINE_ANSWERS:
            self._machine_answered(int(attempt_id), event.provider_call_id)

    def _machine_answered(self, attempt_id: int, provider_call_id: str) -> None:
        """A machine took the call: without a voicemail message to leave, hang up now
        (the verdict came asynchronously, after the call was connected)."""
        with self.sessions() as session:
            message = session.scalar(
                sa.select(Campaign.voicemail_message)
                .join(CallAttempt, CallAttempt.campaign_id == Campaign.id)
                .where(CallAttempt.id == attempt_id)
            )
        if message:
            return
        try:
            self.provider.hang_up(provider_call_id)
        except ProviderError as exc:
            log.warning("attempt %s: hang-up on voicemail failed: %s", attempt_id, exc)

    def _verdict(self, attempt_id: int, event: ProviderEvent) -> str | None:
        """The AMD verdict of a completed call that came with none and found none stored."""
        try:
            return self.provider.fetch(event.provider_call_id).answered_by
        except ProviderError as exc:
            log.warning("attempt %s: AMD verdict lookup failed: %s", attempt_id, exc)
            return None

    def _ingest(
        self, attempt_id: int, event: ProviderEvent, *, ask_verdict: bool = False
    ) -> Ended | None:
        """Ingest ``event`` and release the slot if it ended the attempt; with ``ask_verdict``,
        a completed call with no AMD verdict anywhere gets the provider's (one more lookup)."""
        result = self._ingest_once(attempt_id, event, ask_verdict=ask_verdict)
        if result.needs_verdict:
            event = replace(event, answered_by=self._verdict(attempt_id, event))
            result = self._ingest_once(attempt_id, event, ask_verdict=False)
        if result.ended is not None:
            self.finished(result.ended)
        return result.ended

    def _ingest_once(
        self, attempt_id: int, event: ProviderEvent, *, ask_verdict: bool
    ) -> attempts.Ingested:
        with self.sessions() as session, session.begin():
            return attempts.ingest(
                session,
                attempt_id,
                event,
                now=self.clock(),
                unknown_is_machine=self.config.amd_unknown_as_voicemail,
                ask_verdict=ask_verdict,
            )

    # -- slots ---------------------------------------------------------------------------

    def finished(self, ended: Ended) -> None:
        """After the end is committed: free the slots (idempotent), then tell the caller."""
        self.semaphore.release(holder_id(ended.attempt_id), ended.scope.keys(self.semaphore.prefix))
        self.on_ended(ended)

    def _release_if_ended(self, session: Session, attempt_id: int) -> None:
        row = session.execute(
            sa.select(
                CallAttempt.status,
                CallAttempt.campaign_id,
                CallAttempt.from_number,
                Campaign.tenant_id,
            )
            .join(Campaign, Campaign.id == CallAttempt.campaign_id)
            .where(CallAttempt.id == attempt_id)
        ).one_or_none()
        if row is not None and row.status is AttemptStatus.ENDED:
            scope = SlotScope(row.campaign_id, row.tenant_id, row.from_number)
            self.semaphore.release(holder_id(attempt_id), scope.keys(self.semaphore.prefix))


def outcome_of(info: CallInfo) -> Outcome | None:
    return outcome_for(info.status, info.answered_by)
