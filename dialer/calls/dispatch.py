"""Dispatch: free slots of running campaigns filled with due recipients, fairly.

A tick runs claim rounds (:mod:`dialer.calls.claiming`, one transaction each) round-robin
over the running campaigns, and hands the claimed attempts to the queue only after each
round's commit (outbox: ``enqueued_at`` records the hand-off, and :meth:`Dispatcher.recover_outbox`
re-sends what a crash between commit and hand-off left behind; a repeated dial task is a
no-op). A scheduler's tick only decides and enqueues; a refill (:mod:`dialer.calls.refill`)
runs the same rounds and places its first claim itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import statements
from dialer.calls.claiming import Claimer, ClaimPace, Round, Screened, StartHere
from dialer.calls.jobs import DialJob
from dialer.calls.rebuild import SlotRebuilder
from dialer.concurrency.slots import CallSlots
from dialer.db.models import CallAttempt, Campaign
from dialer.observability import context
from dialer.policy.attempt_state import AttemptStatus
from dialer.policy.campaign_state import CampaignStatus
from dialer.policy.frequency import DEFAULT_CAPS, FrequencyCaps
from dialer.queue.base import TaskQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    #: Lease of a queued attempt's slots until a worker renews them for the call, in seconds.
    queue_lease_s: float = 120.0
    #: Recipients claimed per round, split between its campaigns; rounds alternate.
    round_size: int = 25
    #: A committed attempt not handed to the queue after this long is re-sent, in seconds.
    outbox_timeout_s: float = 15.0
    #: A queued attempt no worker started after this long has its task re-sent, in seconds.
    lost_task_timeout_s: float = 60.0
    #: How long a campaign's list of campaigns sharing its tenant's slots is reused, seconds.
    sharing_ttl_s: float = 1.0
    #: The frequency caps of a tenant that set none (``DIALER_CAP_*``).
    default_caps: FrequencyCaps = DEFAULT_CAPS


@dataclass(slots=True)
class TickResult:
    dispatched: list[int] = field(default_factory=list)
    #: Claimed straight into dialing, for the caller to place at once (see ``StartHere``).
    started: list[DialJob] = field(default_factory=list)
    #: What the screen decided other than calling, and the campaigns that ended.
    screened: Screened = field(default_factory=Screened)

    @property
    def completed(self) -> list[str]:
        return self.screened.completed

    @property
    def window_closed(self) -> list[str]:
        return self.screened.window_closed


class Dispatcher:
    """Claims work fairly across running campaigns; ``tick(now)`` is one pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        slots: CallSlots,
        queue: TaskQueue,
        config: DispatchConfig | None = None,
        rebuilder: SlotRebuilder | None = None,
        pace: ClaimPace | None = None,
    ) -> None:
        """``pace``: the pace reserved at the claim (:mod:`dialer.calls.claiming`)."""
        self._sessions = sessions
        self._queue = queue
        self.config = config or DispatchConfig()
        self._claimer = Claimer(
            slots,
            queue_lease_s=self.config.queue_lease_s,
            pace=pace,
            default_caps=self.config.default_caps,
        )
        self._rebuilder = rebuilder
        self._rotation = 0
        #: campaign id -> (until when, the campaigns its freed slots are shared with).
        self._sharing: dict[str, tuple[datetime, list[str]]] = {}
        #: Called with the claimed ids between their commit and their hand-off to the queue:
        #: the window the outbox covers (tests use it to kill the process right there).
        self.after_commit: Callable[[Sequence[int]], None] | None = None

    def warm(self, now: datetime) -> None:
        """Compile the statements a dispatch starts with (for a campaign that cannot exist)."""
        with self._sessions() as session, session.begin():
            self._claimer.round(session, "", now, 1, None, Screened())

    def tick(
        self,
        now: datetime,
        *,
        campaign_ids: Sequence[str] | None = None,
        most: int | None = None,
        start_here: StartHere | None = None,
        keep_decisions: bool = False,
    ) -> TickResult:
        """Dispatch what the free slots allow, round-robin over running campaigns.

        ``most`` caps the claims of this tick (a freed slot's refill claims one). With
        ``start_here``, the first claims are started by the caller (``result.started``); if it
        dies before placing one, the reaper finds that attempt dialing with no call id and asks
        the provider, as for a dial task that died at the same point.

        Each round gives every campaign that still has free slots and due recipients an
        equal part of ``round_size`` claims (at least one), starting one campaign further each
        tick, so a huge campaign sharing a tenant cap or caller number with small ones cannot
        starve them.

        With ``keep_decisions`` the result keeps the screen's decision about each recipient it
        turned away (otherwise only how many, by reason).
        """
        result = TickResult(screened=Screened(keep_decisions=keep_decisions))
        active = self._campaigns(campaign_ids)
        rebuilt = False
        while active:
            still: list[str] = []
            # A round's claims split between its campaigns: slots freed together (calls
            # started together end together) go round-robin, not all to the first campaign.
            size = -(-self.config.round_size // len(active))
            for campaign_id in active:
                budget = None if most is None else most - len(result.dispatched)
                if budget is not None and budget <= 0:
                    return result
                starting = None
                if start_here is not None and len(result.started) < start_here.count:
                    starting = replace(start_here, count=start_here.count - len(result.started))
                claimed = self._round(campaign_id, now, budget, starting, result, size)
                if claimed.slots_lost and not rebuilt and self._rebuilder is not None:
                    # After the round's transaction; once a tick (a failed rebuild waits).
                    rebuilt = self._rebuilder.rebuild()
                    if rebuilt:
                        still.append(campaign_id)
                elif claimed.more and (budget is None or len(claimed.claimed) < budget):
                    still.append(campaign_id)
            active = still
        return result

    def _campaigns(self, campaign_ids: Sequence[str] | None) -> list[str]:
        """The campaigns a tick goes over, starting one further than the last tick did."""
        if campaign_ids is not None:
            # A slot of these campaigns freed: each round checks its campaign still runs.
            active = list(dict.fromkeys(campaign_ids))
        else:
            with self._sessions() as session:
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
        return active

    def _round(
        self,
        campaign_id: str,
        now: datetime,
        budget: int | None,
        start_here: StartHere | None,
        result: TickResult,
        size: int,
    ) -> Round:
        """One claim round (one transaction) of up to ``size`` claims, then the hand-off of
        what it claimed."""
        context.add(campaign_id=campaign_id)
        size = size if budget is None else min(size, budget)
        with self._sessions() as session, session.begin():
            claimed = self._claimer.round(
                session, campaign_id, now, size, start_here, result.screened
            )
        if claimed.claimed:
            if self.after_commit is not None:
                self.after_commit(claimed.claimed)
            begun = {job.attempt_id for job in claimed.started}
            sent = [attempt_id for attempt_id in claimed.claimed if attempt_id not in begun]
            result.started.extend(claimed.started)
            if sent:
                self._send(sent, claimed.waits)
                self.mark_handed_off(sent, now, claimed.waits)
            result.dispatched.extend(claimed.claimed)
        return claimed

    def _send(self, attempt_ids: Sequence[int], waits: dict[int, float]) -> None:
        """Hand the dial tasks to the queue, each due at its reserved start."""
        by_wait: dict[float, list[int]] = {}
        for attempt_id in attempt_ids:
            by_wait.setdefault(waits.get(attempt_id, 0.0), []).append(attempt_id)
        for wait_s, group in by_wait.items():
            self._queue.dial(group, wait_s)

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
        with self._sessions() as session:
            shared = list(session.scalars(statements.SHARING, {"campaign_id": campaign_id}))
        shared = shared or [campaign_id]
        self._sharing[campaign_id] = (now + timedelta(seconds=self.config.sharing_ttl_s), shared)
        return shared

    def mark_handed_off(
        self,
        attempt_ids: Sequence[int],
        now: datetime,
        waits: Mapping[int, float] | None = None,
    ) -> None:
        """Record that dial tasks for ``attempt_ids`` were sent (the outbox's second rule:
        re-sent only if still queued ``lost_task_timeout_s`` later), each as due at its
        reserved start (``now`` plus its wait in ``waits``, ``pace_ahead_s`` at most), as a
        task sent back with a countdown is: the campaign's ``waiting`` counts it as waiting
        for the pace, and the outbox gives it that much longer."""
        with self._sessions() as session, session.begin():
            if not waits:
                session.execute(statements.HANDED_OFF, {"ids": list(attempt_ids), "at": now})
                return
            session.execute(
                statements.HANDED_OFF_EACH,
                [
                    {"attempt_id": i, "at": now + timedelta(seconds=waits.get(i, 0.0))}
                    for i in attempt_ids
                ],
            )

    def recover_outbox(self, now: datetime) -> list[int]:
        """Re-send dial tasks a crash left unsent, or that no worker ever started.

        Safe to repeat: a dial task claims its attempt with a compare-and-set, so a second
        task for the same attempt does nothing.
        """
        unsent_before = now - timedelta(seconds=self.config.outbox_timeout_s)
        lost_before = now - timedelta(seconds=self.config.lost_task_timeout_s)
        with self._sessions() as session:
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
            self._queue.dial(ids)
            self.mark_handed_off(ids, now)
        return ids
