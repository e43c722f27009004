"""Refilling freed slots: what the end of a call sets off, chosen by where it ended.

Everything that ends calls returns what it freed (:class:`~dialer.calls.jobs.Freed`); the
entry point hands that to the policy of its process:

- :class:`RefillHere` (a worker, the embedded scheduler: processes that dial): the thread
  that ended the call refills the slot itself, claiming one call for it and placing it straight
  from its claim, with no queue hop between one call's end and the next call;
- :class:`AskQueue` (the API, the distributed scheduler): the queue is asked for a dispatch of
  the campaign, which a worker runs;
- :data:`LEAVE` (the embedded API, which must not dispatch): nothing; the scheduler process
  frees and refills at its next tick.

A refill never nests: a call that ends inside a refill (a dial refused outright) asks the
queue, and so does a refill that fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from dialer.calls.claiming import StartHere
from dialer.calls.dispatch import Dispatcher
from dialer.calls.gate import StartGate
from dialer.calls.jobs import Freed
from dialer.calls.placing import Placer
from dialer.observability import context, metrics
from dialer.queue.base import TaskQueue

log = logging.getLogger(__name__)


class Refiller:
    """Dispatches into a campaign's free slots, placing the first call in this thread."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        gate: StartGate,
        placer: Placer,
        queue: TaskQueue,
        clock: Callable[[], datetime],
    ) -> None:
        self._dispatcher = dispatcher
        self._gate = gate
        self._placer = placer
        self._queue = queue
        self._clock = clock

    def refill(self, campaign_id: str, *, most: int | None = None) -> int:
        """Slots of the campaign freed: dispatch into them (at most ``most`` claims).

        The first call claimed is placed from this thread straight from its claim, before
        anything else is claimed: no dial task, a queue hop and a transaction sooner. The rest
        go to the queue. Under a tenant cap the slots go round-robin between the tenant's
        running campaigns (see :meth:`Dispatcher.sharing_slots`).

        If this process dies between that claim's commit and the provider, the reaper finds
        the attempt dialing with no call id and asks the provider. Returns how many calls were
        dispatched.
        """
        targets = self._dispatcher.sharing_slots(campaign_id, self._clock())
        first = self._dispatcher.tick(
            self._clock(),
            campaign_ids=targets,
            most=1,
            start_here=StartHere(1, self._gate.take_pace),
        )
        for job in first.started:
            with context.bound(**job.log_ids):
                dialed = self._placer.place_started(job)
            metrics.dialed(dialed.result)
            freed = dialed.freed
            if freed is not None:
                # Ended inside a refill (refused outright): the queue refills it, no nesting.
                self._queue.dispatch(freed.campaign_id)
        dispatched = len(first.dispatched)
        if dispatched and (most is None or most > 1):
            # The call above went out first; now the rest of the free slots, for the queue.
            rest = None if most is None else most - 1
            more = self._dispatcher.tick(self._clock(), campaign_ids=targets, most=rest)
            dispatched += len(more.dispatched)
        return dispatched


class AfterFreed(Protocol):
    """What a process does with a slot an ended call freed."""

    def __call__(self, freed: Freed | None) -> None: ...


class RefillHere:
    """Refill the freed slot in this thread (one claim); ask the queue if that fails."""

    def __init__(self, refiller: Refiller, queue: TaskQueue) -> None:
        self._refiller = refiller
        self._queue = queue

    def __call__(self, freed: Freed | None) -> None:
        if freed is None:
            return
        try:
            self._refiller.refill(freed.campaign_id, most=1)
        except Exception:
            log.exception("refill of campaign %s failed; asking the queue", freed.campaign_id)
            self._queue.dispatch(freed.campaign_id)


class AskQueue:
    """Ask the queue for a dispatch of the campaign whose slot freed."""

    def __init__(self, queue: TaskQueue) -> None:
        self._queue = queue

    def __call__(self, freed: Freed | None) -> None:
        if freed is not None:
            self._queue.dispatch(freed.campaign_id)


def _leave(freed: Freed | None) -> None:
    """Nothing: another process frees and refills (embedded mode's API)."""


LEAVE: AfterFreed = _leave
