"""One claim round: a campaign's due recipients turned into queued attempts holding slots.

One round is one transaction: read the campaign's due recipients from the
``ix_recipients_due`` index (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers
never claim the same rows; on SQLite the claim's compare-and-set does it and one scheduler is
enough), screen each (:func:`~dialer.policy.screen.screen_recipient`, the same screen the dial
path applies, over the contact histories of the round's numbers read in one query when a
frequency cap holds, :mod:`dialer.calls.contacts`), create the attempts, take their slots
(all layers or none), reserve their starts (the pace,
:meth:`~dialer.calls.gate.StartGate.reserve`: only the calls the pace lets start soon are
claimed, each with the wait to its instant), and move the recipients on. The cost of a round
follows the calls it claims, never the campaign's size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import completion, contacts, facts, guard, statements, states
from dialer.calls.jobs import DialJob
from dialer.concurrency.slots import CallSlots
from dialer.db.bulk import is_postgres
from dialer.db.models import CallerNumber, Campaign, PhoneNumber, Recipient
from dialer.errors import SlotsLost
from dialer.policy.campaign_state import CampaignStatus, PausedReason
from dialer.policy.frequency import DEFAULT_CAPS, NO_CONTACT, ContactHistory, FrequencyCaps
from dialer.policy.screen import (
    CallNow,
    CampaignFacts,
    Decision,
    Deferred,
    ScreenReason,
    Terminal,
    screen_campaign,
    screen_recipient,
)


@dataclass(frozen=True, slots=True)
class StartHere:
    """Claims a round starts itself instead of handing them to the queue.

    Up to ``count`` of the attempts claimed go from the claim straight to dialing, in the
    claim's transaction: the caller places their calls right after the commit (a dial task's
    queue hop, its second lock and its second commit saved). ``pace`` takes a call's pace and
    says whether it may start now; one that must wait goes through the queue, as any other.
    """

    count: int
    pace: Callable[[DialJob], bool]


@dataclass(slots=True)
class Screened:
    """What a tick decided other than calling: per campaign (``held``: none of its recipients
    may be called now), how many recipients it turned away and why (``reasons``), and, when
    asked for (``keep_decisions``), each of those recipients' decision: a tick over a large
    campaign outside its hours may turn away every due recipient it reads."""

    keep_decisions: bool = False
    held: dict[str, Decision] = field(default_factory=dict)
    reasons: Counter[ScreenReason] = field(default_factory=Counter)
    recipients: dict[int, Decision] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    window_closed: list[str] = field(default_factory=list)

    def turned_away(self, recipient_id: int, decision: Deferred | Terminal) -> None:
        self.reasons[decision.reason] += 1
        if self.keep_decisions:
            self.recipients[recipient_id] = decision


class ClaimPace(Protocol):
    """The pace reserved at the claim (:class:`~dialer.calls.gate.StartGate` is one)."""

    @property
    def most_ahead(self) -> int:
        """The most starts any one claim could be given now (within the horizon)."""
        ...

    def reserve(self, calls: Sequence[DialJob]) -> list[float | None]:
        """Each call's wait to its reserved start, None for one not to be claimed now."""
        ...


@dataclass(frozen=True, slots=True)
class Round:
    """What one round claimed (attempt ids), which of them it started, and whether the
    campaign may have more to claim now."""

    claimed: list[int] = field(default_factory=list)
    started: list[DialJob] = field(default_factory=list)
    more: bool = False
    #: Attempt id -> seconds until its reserved start (its dial task's countdown).
    waits: dict[int, float] = field(default_factory=dict)
    #: The slots' store had lost its holders: nothing was admitted. The caller rebuilds it,
    #: after the round's transaction (never inside: the rebuild waits for dials under way).
    slots_lost: bool = False


_NOTHING = Round()


class Claimer:
    """Runs claim rounds against one slot store."""

    def __init__(
        self,
        slots: CallSlots,
        *,
        queue_lease_s: float,
        pace: ClaimPace | None = None,
        default_caps: FrequencyCaps = DEFAULT_CAPS,
    ) -> None:
        """``queue_lease_s``: the lease of a claimed attempt's slots until a worker renews
        them for the call, in seconds. ``pace``: the pace reserved at the claim (without it,
        every call is claimed to start now and takes its pace at the dial).
        ``default_caps``: the frequency caps of a tenant that set none."""
        self._slots = slots
        self._queue_lease_s = queue_lease_s
        self._pace = pace
        self._default_caps = default_caps

    def round(
        self,
        session: Session,
        campaign_id: str,
        now: datetime,
        size: int,
        start_here: StartHere | None,
        screened: Screened,
    ) -> Round:
        """Claim up to ``size`` due recipients of the campaign in the caller's transaction."""
        found = session.execute(
            statements.ROUND_CAMPAIGN, {"campaign_id": campaign_id}
        ).one_or_none()
        if found is None:
            return _NOTHING
        campaign, tenant_limit, tenant_cps, *tenant_caps = found
        caps = contacts.caps_of(
            (tenant_caps[0], tenant_caps[1], tenant_caps[2]),
            campaign.frequency_caps,
            self._default_caps,
        )
        about = facts.campaign_facts(campaign, caps=caps)
        gate = screen_campaign(about, now)
        if not isinstance(gate, CallNow):
            screened.held[campaign.id] = gate
            if isinstance(gate, Terminal) and campaign.status is CampaignStatus.RUNNING:
                completion.close_window(session, campaign, now=now)
                screened.window_closed.append(campaign.id)
            return _NOTHING
        free = campaign.max_concurrency - self._slots.in_use(campaign.id)
        if free <= 0:
            return _NOTHING
        want = min(size, free)
        if self._pace is not None:
            want = min(want, self._pace.most_ahead)
        rows = _due(session, campaign, now, want * 2)
        if not rows:
            if completion.is_finished(session, campaign.id):
                completion.finish(session, campaign, now=now)
                screened.completed.append(campaign.id)
            return _NOTHING
        start = start_here.count if start_here is not None else 0
        history: dict[str, ContactHistory] = {}
        if caps.active:
            numbers = [row.recipient.phone_number for row in rows]
            if start:
                # Calls started here are dialed by this transaction: their check and their
                # record hold the numbers' locks, as a dial's do (:mod:`dialer.calls.contacts`).
                contacts.lock_numbers(session, campaign.tenant_id, numbers)
            history = contacts.histories(session, campaign.tenant_id, numbers, caps, now)
        chosen = _screen(session, rows, history, about, want, now, screened)
        plan = _Plan.of(session, campaign, chosen)
        if plan is None:
            guard.pause(session, campaign, PausedReason.NO_HEALTHY_NUMBER, now=now)
            return _NOTHING
        admitted, full, lost = self._admit(
            session, campaign, plan, (tenant_limit, tenant_cps), chosen, now
        )
        if lost:
            return Round(slots_lost=True)
        pace = start_here.pace if start_here is not None else None
        jobs = [(job, recipient) for job, recipient, _ in admitted]
        started = states.admit(session, campaign.id, jobs, start=start, may_start=pace, now=now)
        if started:
            calls = [(job.attempt_id, job.to) for job in started]
            contacts.record(session, campaign.tenant_id, calls, now)
        claimed = [job.attempt_id for job, _ in jobs]
        waits = {job.attempt_id: wait_s for job, _, wait_s in admitted if wait_s > 0}
        # Come back while slots may be left: the round's size stopped it, or screening did
        # (not the pace: it has nothing more to give until later).
        left = want < free or len(claimed) < want
        return Round(claimed, started, not full and len(rows) >= want and left, waits)

    def _admit(
        self,
        session: Session,
        campaign: Campaign,
        plan: _Plan,
        tenant_caps: tuple[int | None, float | None],
        chosen: list[Recipient],
        now: datetime,
    ) -> tuple[list[tuple[DialJob, Recipient, float]], bool, bool]:
        """Create the attempts of ``chosen``, take their slots and reserve their starts, in a
        fixed number of statements; those refused a slot or a start soon enough are dropped.
        Returns the admitted (job, recipient, wait to its start) triples, whether the pace or
        a slot refused any, and whether the slots' store had lost its holders (then none is
        admitted). ``tenant_caps``: the tenant's ``max_concurrency`` and ``max_cps``."""
        if not chosen:
            return [], False, False
        callers = [plan.caller(r) for r in chosen]
        numbers = [_from_number(campaign, caller) for caller in callers]
        tenant_limit, tenant_cps = tenant_caps
        ids = states.new_attempts(session, campaign, list(zip(chosen, numbers, strict=True)), now)
        jobs = [
            DialJob.of(
                campaign,
                attempt_id=attempt_id,
                recipient_id=recipient.id,
                to=recipient.phone_number,
                from_=number,
                tenant_limit=tenant_limit,
                caller_limit=_caller_limit(caller),
                tenant_cps=tenant_cps,
            )
            for attempt_id, recipient, number, caller in zip(
                ids, chosen, numbers, callers, strict=True
            )
        ]
        try:
            admissions = self._slots.acquire_many([job.claim for job in jobs], self._queue_lease_s)
        except SlotsLost:
            states.drop_refused(session, [job.attempt_id for job in jobs])
            return [], True, True
        refused = [job.attempt_id for job, a in zip(jobs, admissions, strict=True) if not a]
        states.drop_refused(session, refused)
        held = [
            (job, recipient)
            for job, recipient, a in zip(jobs, chosen, admissions, strict=True)
            if a
        ]
        # The pace last, for the calls that hold their slots: a start reserved is never lost
        # to a slot another claim took meanwhile.
        waits: list[float | None] = [0.0] * len(held)
        if self._pace is not None:
            waits = self._pace.reserve([job for job, _ in held])
        unpaced = [job for (job, _), wait_s in zip(held, waits, strict=True) if wait_s is None]
        for job in unpaced:
            # Not claimed now: no start soon enough (its recipient stays due, untouched).
            self._slots.release(job.attempt_id, job.scope)
        states.drop_refused(session, [job.attempt_id for job in unpaced])
        admitted = [
            (job, recipient, wait_s)
            for (job, recipient), wait_s in zip(held, waits, strict=True)
            if wait_s is not None
        ]
        return admitted, bool(refused) or bool(unpaced), False


@dataclass(frozen=True, slots=True)
class _Due:
    """A due recipient as the round reads it: with whether its number is suppressed, and
    (for a campaign that requires consent) whether it has a consent record."""

    recipient: Recipient
    suppressed: bool
    consented: bool


def _due(session: Session, campaign: Campaign, now: datetime, limit: int) -> list[_Due]:
    """Up to ``limit`` due recipients of ``campaign``, their rows locked (PostgreSQL), in one
    query: the consent check joins it only when the campaign requires consent."""
    postgres = is_postgres(session)
    params = {"campaign_id": campaign.id, "tenant_id": campaign.tenant_id, "now": now}
    if campaign.require_consent:
        stmt = statements.DUE_CONSENT_LOCK if postgres else statements.DUE_CONSENT
        return [
            _Due(recipient, bool(suppressed), bool(consented))
            for recipient, suppressed, consented in session.execute(
                stmt, {**params, "limit": limit}
            )
        ]
    stmt = statements.DUE_LOCK if postgres else statements.DUE
    return [
        _Due(recipient, bool(suppressed), False)
        for recipient, suppressed in session.execute(stmt, {**params, "limit": limit})
    ]


def _screen(
    session: Session,
    rows: Sequence[_Due],
    history: dict[str, ContactHistory],
    campaign: CampaignFacts,
    want: int,
    now: datetime,
    screened: Screened,
) -> list[Recipient]:
    """The first ``want`` due recipients the screen lets through; the others are deferred or
    ended as it decides. The history counts calls dialed, not those claimed and not dialed
    yet: the dial screens again with the contacts it holds the lock of, and decides."""
    chosen: list[Recipient] = []
    for row in rows:
        if len(chosen) >= want:
            break
        recipient = row.recipient
        about = facts.recipient_facts(
            recipient,
            suppressed=row.suppressed,
            has_consent=row.consented,
            contacts=history.get(recipient.phone_number, NO_CONTACT),
        )
        decision = screen_recipient(about, campaign, now)
        if isinstance(decision, CallNow):
            chosen.append(recipient)
        else:
            screened.turned_away(recipient.id, decision)
            states.screened_out(session, recipient, decision, now)
    return chosen


@dataclass(frozen=True, slots=True)
class _Plan:
    """The caller numbers a round's recipients are called from: each its own dial-plan
    entry's (or the campaign's number), unless that number is quarantined, when another
    healthy entry of the dial plan takes over (spread by recipient id)."""

    campaign: Campaign
    callers: dict[str, CallerNumber]
    quarantined: frozenset[str]
    healthy: tuple[CallerNumber, ...]

    @classmethod
    def of(cls, session: Session, campaign: Campaign, due: list[Recipient]) -> _Plan | None:
        """The plan of ``due``; None when one of them has no healthy number left to be
        called from (the campaign pauses). Reads the tenant's quarantined numbers (usually
        none: one indexed lookup) and, only when needed, the dial plan."""
        quarantined = frozenset(
            session.scalars(
                sa.select(PhoneNumber.number).where(
                    PhoneNumber.tenant_id == campaign.tenant_id,
                    PhoneNumber.quarantined_at.is_not(None),
                )
            )
        )
        callers: dict[str, CallerNumber] = {}
        if quarantined or any(r.caller_number_id for r in due):
            rows = session.scalars(
                sa.select(CallerNumber)
                .where(CallerNumber.campaign_id == campaign.id)
                .order_by(CallerNumber.id)
            )
            callers = {caller.id: caller for caller in rows}
        healthy = tuple(c for c in callers.values() if _from_number(campaign, c) not in quarantined)
        plan = cls(campaign, callers, quarantined, healthy)
        if quarantined and not healthy and any(plan.quarantined_own(r) for r in due):
            return None
        return plan

    def quarantined_own(self, recipient: Recipient) -> bool:
        """Whether the number ``recipient`` is assigned to is quarantined."""
        return _from_number(self.campaign, self._own(recipient)) in self.quarantined

    def caller(self, recipient: Recipient) -> CallerNumber | None:
        """The dial-plan entry ``recipient`` is called from (None: the campaign's number)."""
        own = self._own(recipient)
        if not self.healthy or _from_number(self.campaign, own) not in self.quarantined:
            return own
        return self.healthy[recipient.id % len(self.healthy)]

    def _own(self, recipient: Recipient) -> CallerNumber | None:
        if recipient.caller_number_id is None:
            return None
        return self.callers.get(recipient.caller_number_id)


def _from_number(campaign: Campaign, caller: CallerNumber | None) -> str:
    if caller is not None:
        return caller.caller_id_number or caller.phone_number_id
    return campaign.caller_id_number or campaign.phone_number_id


def _caller_limit(caller: CallerNumber | None) -> int | None:
    return None if caller is None else caller.max_concurrency
