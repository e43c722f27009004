"""Dispatch: turn due recipients of running campaigns into queued attempts holding slots.

One claim batch is one transaction: read the campaign's due recipients from the
``ix_recipients_due`` index (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers
never claim the same rows; on SQLite the compare-and-set below does it and one scheduler is
enough), screen each (do-not-call, calling hours, unknown zone), create its attempt, take its
slots (all layers or none), commit, and only then hand the attempt ids to the queue (outbox:
``enqueued_at`` records the hand-off, and :func:`recover_outbox` re-sends what a crash
between commit and hand-off left behind; a repeated dial task is a no-op).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, load_only, sessionmaker

from dialer.concurrency.keys import SlotScope, holder_id, layered_limits
from dialer.concurrency.semaphore.base import LeaseSemaphore
from dialer.db.bulk import is_postgres
from dialer.db.models import CallAttempt, CallerNumber, Campaign, Recipient, Tenant
from dialer.policy.attempt_state import (
    CLAIMABLE_RECIPIENT,
    AttemptStatus,
    RecipientStatus,
    move_recipient,
)
from dialer.policy.calling_hours import UNKNOWN_TIME_ZONE, NotCallable
from dialer.policy.campaign_state import CampaignStatus
from dialer.services import completion, counters, windows
from dialer.services.attempts import (
    REASON_NO_WINDOW_LEFT,
    REASON_SUPPRESSED,
    DialJob,
    start_dialing,
)
from dialer.services.suppression import suppressed_number

log = logging.getLogger(__name__)

Enqueue = Callable[[Sequence[int]], None]


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    #: Lease of a queued attempt's slots until a worker renews them for the call, in seconds.
    queue_lease_s: float = 120.0
    #: Recipients claimed per campaign per round; rounds alternate between campaigns.
    round_size: int = 25
    #: A committed attempt not handed to the queue after this long is re-sent, in seconds.
    outbox_timeout_s: float = 15.0
    #: A queued attempt no worker started after this long has its task re-sent, in seconds.
    lost_task_timeout_s: float = 60.0
    #: How long a campaign's list of campaigns sharing its tenant's slots is reused, seconds.
    sharing_ttl_s: float = 1.0


@dataclass(slots=True)
class TickResult:
    dispatched: list[int] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    window_closed: list[str] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    #: Claimed straight into dialing, for the caller to place at once (see ``StartHere``).
    started: list[DialJob] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StartHere:
    """Claims a tick starts itself instead of handing them to the queue.

    Up to ``count`` of the attempts claimed go from the claim straight to dialing, in the
    claim's transaction: the caller places their calls right after the commit (a dial task's
    queue hop, its second lock and its second commit saved). ``pace`` takes a call's pace and
    says whether it may start now; one that must wait goes through the queue, as any other.
    """

    count: int
    pace: Callable[[DialJob], bool]


@dataclass(frozen=True, slots=True)
class _Claim:
    """What one round's screening and slot taking left: the admitted attempts (with their
    recipients, not moved yet), whether a slot was refused, and the counter deltas so far."""

    campaign_id: str
    admitted: list[tuple[DialJob, Recipient]]
    full: bool
    deltas: Counter[str]


_ATTEMPTS = cast(sa.Table, CallAttempt.__table__)
_CAMPAIGNS = cast(sa.Table, Campaign.__table__)
_FREED = _CAMPAIGNS.alias("freed")
#: The running campaigns of a campaign's tenant when the tenant has a cap (a Core statement
#: built once: it runs at every refill).
_SHARING = (
    sa.select(_CAMPAIGNS.c.id)
    .join(_FREED, _FREED.c.tenant_id == _CAMPAIGNS.c.tenant_id)
    .join(Tenant.__table__, Tenant.__table__.c.id == _FREED.c.tenant_id)
    .where(
        _FREED.c.id == sa.bindparam("campaign_id"),
        Tenant.__table__.c.max_concurrency.is_not(None),
        _CAMPAIGNS.c.status == CampaignStatus.RUNNING,
    )
    .order_by(_CAMPAIGNS.c.created_at, _CAMPAIGNS.c.id)
)
_HANDED_OFF = (
    sa.update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(enqueued_at=sa.bindparam("at"))
)


#: What a dispatch reads of its campaign (anything else loads on first use: closing a window).
_DISPATCH_COLUMNS = load_only(
    Campaign.id,
    Campaign.tenant_id,
    Campaign.status,
    Campaign.max_concurrency,
    Campaign.caller_id_number,
    Campaign.phone_number_id,
    Campaign.current_run_id,
    Campaign.machine_detection_timeout_seconds,
    *windows.CAMPAIGN_WINDOW_COLUMNS,
)


#: Statements of a claim round, built once (building and keying one costs more than running
#: it). A round reads its campaign with the tenant's cap...
_ROUND_CAMPAIGN = (
    sa.select(Campaign, Tenant.max_concurrency)
    .join(Tenant, Tenant.id == Campaign.tenant_id)
    .where(Campaign.id == sa.bindparam("campaign_id"))
    .options(_DISPATCH_COLUMNS)
)
#: ...then the campaign's due recipients from ``ix_recipients_due``, each with whether its
#: number is on the tenant's do-not-call list now (read with the rows, one round trip fewer);
#: on PostgreSQL rows another claim holds are skipped, on SQLite the claim's compare-and-set
#: and a single scheduler do it...
_DUE = (
    sa.select(Recipient, suppressed_number(sa.bindparam("tenant_id"), Recipient))
    .where(
        Recipient.campaign_id == sa.bindparam("campaign_id"),
        Recipient.status.in_(sorted(CLAIMABLE_RECIPIENT)),
        Recipient.next_attempt_at <= sa.bindparam("now"),
    )
    .order_by(Recipient.next_attempt_at, Recipient.id)
    .limit(sa.bindparam("limit"))
)
_DUE_LOCK = _DUE.with_for_update(skip_locked=True)
#: ...and inserts their attempts, ids back in the order given.
_INSERT_ATTEMPTS = sa.insert(_ATTEMPTS).returning(_ATTEMPTS.c.id, sort_by_parameter_order=True)


class Dispatcher:
    """Claims work fairly across running campaigns; ``tick(now)`` is one pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        semaphore: LeaseSemaphore,
        enqueue: Enqueue,
        config: DispatchConfig | None = None,
    ) -> None:
        self.sessions = sessions
        self.semaphore = semaphore
        self.enqueue = enqueue
        self.config = config or DispatchConfig()
        self._rotation = 0
        #: campaign id -> (until when, the campaigns its freed slots are shared with).
        self._sharing: dict[str, tuple[datetime, list[str]]] = {}
        #: Called with the claimed ids between their commit and their hand-off to the queue:
        #: the window the outbox covers (tests use it to kill the process right there).
        self.after_commit: Callable[[Sequence[int]], None] | None = None

    def warm(self, now: datetime) -> None:
        """Compile the statements a dispatch starts with (for a campaign that cannot exist)."""
        self._claim_round("", now, TickResult(), None, None)

    def tick(
        self,
        now: datetime,
        *,
        campaign_ids: Sequence[str] | None = None,
        most: int | None = None,
        start_here: StartHere | None = None,
    ) -> TickResult:
        """Dispatch what the free slots allow, round-robin over running campaigns.

        ``most`` caps the claims of this tick (a freed slot's refill claims one). With
        ``start_here``, the first claims are started by the caller (``result.started``); if it
        dies before placing one, the reaper finds that attempt dialing with no call id and asks
        the provider, as for a dial task that died at the same point.

        Each round gives every campaign that still has free slots and due recipients up to
        ``round_size`` claims, starting one campaign further each tick, so a huge campaign
        sharing a tenant cap or caller number with small ones cannot starve them.
        """
        result = TickResult()
        if campaign_ids is not None:
            # A slot of these campaigns freed: each round checks its campaign still runs.
            active = list(dict.fromkeys(campaign_ids))
        else:
            with self.sessions() as session:
                active = list(
                    session.scalars(
                        sa.select(Campaign.id)
                        .where(Campaign.status == CampaignStatus.RUNNING)
                        .order_by(Campaign.created_at, Campaign.id)
                    )
                )
        if active:
            self._rotation = (self._rotation + 1) % len(active)
            active = active[self._rotation :] + active[: self._rotation]
        while active:
            still: list[str] = []
            for campaign_id in active:
                budget = None if most is None else most - len(result.dispatched)
                if budget is not None and budget <= 0:
                    return result
                starting = None
                if start_here is not None and len(result.started) < start_here.count:
                    starting = replace(start_here, count=start_here.count - len(result.started))
                claimed, started, more = self._claim_round(
                    campaign_id, now, result, budget, starting
                )
                if claimed:
                    if self.after_commit is not None:
                        self.after_commit(claimed)
                    begun = {job.attempt_id for job in started}
                    sent = [attempt_id for attempt_id in claimed if attempt_id not in begun]
                    result.started.extend(started)
                    if sent:
                        self.enqueue(sent)
                        self.mark_handed_off(sent, now)
                    result.dispatched.extend(claimed)
                if more:
                    still.append(campaign_id)
            active = still
        return result

    def _claim_round(
        self,
        campaign_id: str,
        now: datetime,
        result: TickResult,
        budget: int | None,
        start_here: StartHere | None,
    ) -> tuple[list[int], list[DialJob], bool]:
        """One transaction for one campaign: (attempts claimed, those started, whether to come
        back)."""
        size = self.config.round_size if budget is None else min(self.config.round_size, budget)
        with self.sessions() as session, session.begin():
            found = session.execute(_ROUND_CAMPAIGN, {"campaign_id": campaign_id}).one_or_none()
            if found is None or found[0].status is not CampaignStatus.RUNNING:
                return [], [], False
            campaign, tenant_limit = found
            if campaign.schedule_end_time is not None and now >= campaign.schedule_end_time:
                completion.close_window(session, campaign, now=now)
                result.window_closed.append(campaign.id)
                return [], [], False
            window = windows.of_campaign(campaign)
            if not window.allows(now):
                return [], [], False
            free = campaign.max_concurrency - self.semaphore.count(
                SlotScope(campaign.id, campaign.tenant_id).campaign_key(self.semaphore.prefix)
            )
            if free <= 0:
                return [], [], False
            want = min(size, free)
            due_rows = _DUE_LOCK if is_postgres(session) else _DUE
            rows = session.execute(
                due_rows,
                {
                    "campaign_id": campaign.id,
                    "tenant_id": campaign.tenant_id,
                    "now": now,
                    "limit": want * 2,
                },
            ).all()
            due = [recipient for recipient, _ in rows]
            blocked = {recipient.id for recipient, suppressed in rows if suppressed}
            if not due:
                if completion.is_finished(session, campaign.id):
                    completion.finish(session, campaign, now=now)
                    result.completed.append(campaign.id)
                return [], [], False
            claim = self._claim(session, campaign, tenant_limit, due, blocked, want, now)
            started = self._start(session, claim, start_here, now)
        # Come back while slots may be left: the round's size stopped it, or screening did;
        # never past the tick's budget.
        claimed = [job.attempt_id for job, _ in claim.admitted]
        left = (want < free or len(claimed) < want) and (budget is None or len(claimed) < budget)
        return claimed, started, not claim.full and len(due) >= want and left

    def _claim(
        self,
        session: Session,
        campaign: Campaign,
        tenant_limit: int | None,
        due: list[Recipient],
        blocked: set[int],
        want: int,
        now: datetime,
    ) -> _Claim:
        """Screen ``due`` (``blocked``: the ids of those whose number is suppressed), then
        claim up to ``want`` in a fixed number of statements.

        One INSERT of the attempts, one round trip to the semaphore for all their slots, one
        DELETE of the attempts it refused, one UPDATE of the admitted recipients, one counter
        update: the cost of a tick follows the calls it dispatches, never the campaign's size.
        The admitted recipients are left for :meth:`_start` to move (queued, or in flight).
        """
        callers = (
            {
                c.id: c
                for c in session.scalars(
                    sa.select(CallerNumber).where(CallerNumber.campaign_id == campaign.id)
                )
            }
            if any(r.caller_number_id for r in due)
            else {}
        )
        window = windows.of_campaign(campaign)
        chosen: list[tuple[Recipient, CallerNumber | None, str]] = []
        deltas: Counter[str] = Counter()
        for recipient in due:
            if len(chosen) >= want:
                break
            if recipient.id in blocked:
                deltas.update(
                    _end_recipient(recipient, RecipientStatus.SUPPRESSED, REASON_SUPPRESSED, now)
                )
                continue
            allowed = windows.of_recipient(window, recipient)
            if isinstance(allowed, NotCallable):
                deltas.update(
                    _end_recipient(recipient, RecipientStatus.SKIPPED, UNKNOWN_TIME_ZONE, now)
                )
                continue
            if not allowed.allows(now):
                opens = allowed.next_open(now)
                if opens is None:
                    deltas.update(
                        _end_recipient(
                            recipient, RecipientStatus.SKIPPED, REASON_NO_WINDOW_LEFT, now
                        )
                    )
                else:
                    recipient.next_attempt_at = opens
                continue
            caller = callers.get(recipient.caller_number_id) if recipient.caller_number_id else None
            from_number = (
                (caller.caller_id_number or caller.phone_number_id)
                if caller is not None
                else (campaign.caller_id_number or campaign.phone_number_id)
            )
            chosen.append((recipient, caller, from_number))
        if not chosen:
            return _Claim(campaign.id, [], False, deltas)
        ids = list(
            session.scalars(
                _INSERT_ATTEMPTS,
                [
                    {
                        "recipient_id": recipient.id,
                        "campaign_id": campaign.id,
                        "run_id": campaign.current_run_id,
                        "attempt_number": recipient.attempt_count + 1,
                        "from_number": from_number,
                        "to_number": recipient.phone_number,
                        "status": AttemptStatus.QUEUED.value,
                        "queued_at": now,
                        "provider_retries": 0,
                    }
                    for recipient, _, from_number in chosen
                ],
            )
        )
        jobs = [
            DialJob(
                attempt_id=attempt_id,
                campaign_id=campaign.id,
                tenant_id=campaign.tenant_id,
                recipient_id=recipient.id,
                to=recipient.phone_number,
                from_=from_number,
                campaign_limit=campaign.max_concurrency,
                tenant_limit=tenant_limit,
                caller_limit=caller.max_concurrency if caller is not None else None,
                machine_detection_timeout_s=campaign.machine_detection_timeout_seconds or 30,
            )
            for attempt_id, (recipient, caller, from_number) in zip(ids, chosen, strict=True)
        ]
        requests = [
            (
                holder_id(job.attempt_id),
                layered_limits(
                    job.scope,
                    job.campaign_limit,
                    job.tenant_limit,
                    job.caller_limit,
                    prefix=self.semaphore.prefix,
                ),
            )
            for job in jobs
        ]
        admissions = self.semaphore.acquire_many(requests, self.config.queue_lease_s)
        refused = [job.attempt_id for job, a in zip(jobs, admissions, strict=True) if not a]
        if refused:
            session.execute(sa.delete(CallAttempt).where(CallAttempt.id.in_(refused)))
        admitted = [
            (job, recipient)
            for job, (recipient, _, _), a in zip(jobs, chosen, admissions, strict=True)
            if a
        ]
        return _Claim(campaign.id, admitted, bool(refused), deltas)

    def _start(
        self, session: Session, claim: _Claim, start_here: StartHere | None, now: datetime
    ) -> list[DialJob]:
        """Move the admitted recipients on and count them: the first ``start_here.count``,
        while their pace allows, go in flight with their attempts dialing; the rest are
        queued for dial tasks."""
        started: list[DialJob] = []
        may_start = start_here is not None
        deltas = claim.deltas
        for job, recipient in claim.admitted:
            source = recipient.status
            recipient.status = move_recipient(source, RecipientStatus.QUEUED)
            if start_here is not None and may_start and len(started) < start_here.count:
                if start_here.pace(job):
                    recipient.status = move_recipient(recipient.status, RecipientStatus.IN_FLIGHT)
                    started.append(job)
                else:
                    may_start = False  # this call must wait: it and the rest go to the queue
            deltas.update(counters.moved(source, recipient.status))
            recipient.reason = None
            recipient.attempt_count += 1
            recipient.run_attempts += 1
            recipient.updated_at = now
        start_dialing(session, [job.attempt_id for job in started], now=now)
        counters.bump(session, claim.campaign_id, deltas)
        return started

    def sharing_slots(self, campaign_id: str, now: datetime) -> list[str]:
        """The campaigns a freed slot of ``campaign_id`` goes round-robin between.

        With a tenant cap, the slot that freed is also the tenant's, and every running campaign
        of the tenant may want it: all of them, so a huge campaign whose calls keep ending
        cannot keep the tenant's slots from a small one that started after it. Without one,
        the campaign alone (its own slot freed; the others are the scheduler's to fill).

        Read at most every ``sharing_ttl_s`` per campaign (a refill per call end would read it
        at every end); a campaign that starts meanwhile is the scheduler's until then, and one
        that stopped is skipped by its round.
        """
        cached = self._sharing.get(campaign_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.sessions() as session:
            shared = list(session.scalars(_SHARING, {"campaign_id": campaign_id})) or [campaign_id]
        self._sharing[campaign_id] = (now + timedelta(seconds=self.config.sharing_ttl_s), shared)
        return shared

    def mark_handed_off(self, attempt_ids: Sequence[int], now: datetime) -> None:
        """Record that dial tasks for ``attempt_ids`` were sent (the outbox's second rule:
        re-sent only if still queued ``lost_task_timeout_s`` later)."""
        with self.sessions() as session, session.begin():
            session.execute(_HANDED_OFF, {"ids": list(attempt_ids), "at": now})

    def recover_outbox(self, now: datetime) -> list[int]:
        """Re-send dial tasks a crash left unsent, or that no worker ever started.

        Safe to repeat: a dial task claims its attempt with a compare-and-set, so a second
        task for the same attempt does nothing.
        """
        unsent_before = now - timedelta(seconds=self.config.outbox_timeout_s)
        lost_before = now - timedelta(seconds=self.config.lost_task_timeout_s)
        with self.sessions() as session:
            ids = list(
                session.scalars(
                    sa.select(CallAttempt.id).where(
                        CallAttempt.status == AttemptStatus.QUEUED,
                        sa.or_(
                            sa.and_(
                                CallAttempt.enqueued_at.is_(None),
                                CallAttempt.queued_at <= unsent_before,
                            ),
                            CallAttempt.enqueued_at <= lost_before,
                        ),
                    )
                )
            )
        if ids:
            log.warning("re-sending %d dial task(s) found in the outbox: %s", len(ids), ids[:20])
            self.enqueue(ids)
            self.mark_handed_off(ids, now)
        return ids


def _end_recipient(
    recipient: Recipient, target: RecipientStatus, reason: str, now: datetime
) -> Counter[str]:
    """End a recipient that can never be dialed here; returns the counter deltas."""
    deltas = counters.moved(recipient.status, target)
    recipient.status = target
    recipient.reason = reason
    recipient.updated_at = now
    return deltas
