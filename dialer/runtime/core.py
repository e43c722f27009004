"""One process's wiring: its database, stores, provider, queue, and the services of a call's path.

Built once per process by the builder of its role (:mod:`dialer.runtime.roles`) and passed
down; nothing below reads the environment. The services are built in dependency order, each
given what it uses, and nothing is bound after construction: the consumers of in-process work
(the simulator's event lanes, the embedded task threads) are started once the runtime exists,
as Celery workers are started beside a broker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls.config import CallConfig
from dialer.calls.dispatch import DispatchConfig, Dispatcher
from dialer.calls.ending import Ender
from dialer.calls.gate import StartGate
from dialer.calls.guard import HealthGuard
from dialer.calls.hanging_up import HangUpReport, HangUps
from dialer.calls.ingesting import Ingestor
from dialer.calls.jobs import Freed
from dialer.calls.placing import Dialed, Placer
from dialer.calls.reaper import Reaper, ReapReport
from dialer.calls.rebuild import SlotRebuilder
from dialer.calls.refill import LEAVE, AfterFreed, AskQueue, Refiller, RefillHere
from dialer.calls.resolving import Resolver
from dialer.calls.sweep import Sweeper, SweepReport
from dialer.clock import utc_now
from dialer.concurrency.stores import ConcurrencyStores
from dialer.db.engine import make_engine, session_factory
from dialer.observability import context, metrics
from dialer.policy import calling_rules
from dialer.policy.health import limits_from as health_limits
from dialer.queue.base import TaskQueue
from dialer.settings import Settings
from dialer.telephony.base import TelephonyProvider
from dialer.telephony.events import ProviderEvent
from dialer.telephony.providers import provider_package
from dialer.telephony.simulator.channel import EventLanes, LaneReaders

log = logging.getLogger(__name__)


class Refills(StrEnum):
    """Where a slot freed by a call's end is refilled (see :mod:`dialer.calls.refill`)."""

    #: In the thread that ended the call: a process that dials (worker, embedded scheduler).
    HERE = "here"
    #: By asking the queue for a dispatch: the API and the distributed scheduler.
    QUEUE = "queue"
    #: Not by this process: the embedded API, which must not dispatch.
    ELSEWHERE = "elsewhere"


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    stores: ConcurrencyStores
    provider: TelephonyProvider
    clock: Callable[[], datetime]
    #: Where this process sends dial and dispatch work.
    queue: TaskQueue
    calls: CallConfig
    ender: Ender
    ingestor: Ingestor
    resolver: Resolver
    gate: StartGate
    placer: Placer
    dispatcher: Dispatcher
    refiller: Refiller
    reaper: Reaper
    sweeper: Sweeper
    rebuilder: SlotRebuilder
    #: What this process does with a slot an ended call freed.
    after_freed: AfterFreed
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: Set as the runtime starts closing: calls that end from then on free their slots, and
    #: nothing new is claimed or placed here (the rest of the fleet, or the next start, will).
    closing: threading.Event = field(default_factory=threading.Event)

    # -- entry points: each hands what it freed to ``after_freed`` -------------------------

    def run_dial(self, attempt_id: int) -> Dialed:
        """The dial task: place the call of one queued attempt, at most once."""
        with context.bound(attempt_id=attempt_id):
            dialed = self.placer.dial(attempt_id)
            metrics.dialed(dialed.result)
            self._freed(dialed.freed)
        return dialed

    def run_dispatch(self, campaign_id: str) -> int:
        """The dispatch task: slots of the campaign freed (a call the API took in ended, a dial
        failed in a refill, the campaign started); the first call claimed is dialed here."""
        with context.bound(campaign_id=campaign_id):
            self.queue.dispatch_started(campaign_id)
            if self.closing.is_set():
                return 0
            return self.refiller.refill(campaign_id)

    def take_event(self, attempt_id: int | str, event: ProviderEvent) -> Freed | None:
        """A provider event reported in process (the simulator's): counted and timed as a
        callback (a webhook's is, by its route)."""
        with (
            context.bound(attempt_id=int(attempt_id), call_sid=event.provider_call_id),
            metrics.callback(event.kind),
        ):
            freed = self.ingestor.ingest(int(attempt_id), event)
            self._freed(freed)
        return freed

    def record_event(self, attempt_id: int | str, event: ProviderEvent) -> AfterEvent:
        """A provider event, in parts: its database part now (committed when this returns),
        and what follows, returned to run after answering: freeing the slots of the call it
        ended and asking for a refill (Redis, the broker), and hanging up on a machine (the
        provider). What an API that must answer its webhooks whatever Redis or the provider
        does runs on its backlogs."""
        attempt = int(attempt_id)
        ended = self.ingestor.record(attempt, event)

        def free() -> None:
            self._freed(self.ingestor.free(ended))

        def hang_up() -> None:
            self._freed(self.ingestor.hang_up_on_machine(attempt, event))

        return AfterEvent(free, hang_up if event.kind == "amd" else None)

    def hang_up_campaign(self, campaign_id: str) -> HangUpReport:
        """End the campaign's calls in flight through the provider (a stop asking for it);
        the slots of those that end free as any ended call's."""
        hang_ups = HangUps(self.sessions, self.provider, self.ingestor)
        return hang_ups.campaign(campaign_id, freed=self._freed)

    def reap(self, now: datetime) -> ReapReport:
        """Look up stuck attempts at the provider (the scheduler's reconcile)."""
        report = self.reaper.reap(now)
        for verdict in report.verdicts.values():
            metrics.reaped(verdict.value)
        for freed in report.freed:
            self._freed(freed)
        return report

    def sweep(self, now: datetime) -> SweepReport:
        """Ask the provider about calls we have heard nothing of (lost callbacks)."""
        report = self.sweeper.sweep(now)
        metrics.swept(metrics.SWEEP_FETCHED, report.fetched)
        metrics.swept(metrics.SWEEP_ENDED, len(report.ended))
        metrics.swept(metrics.SWEEP_FAILED, report.failed)
        for freed in report.freed:
            self._freed(freed)
        return report

    def _freed(self, freed: Freed | None) -> None:
        if freed is not None and not self.closing.is_set():
            self.after_freed(freed)

    # -- life cycle ----------------------------------------------------------------------

    def warm(self, connections: int) -> None:
        """Pay the first-use costs now, so that the first calls do not wait for them.

        Opens up to ``connections`` database connections at once (as many as the pool keeps),
        compiles the first statements of the dial, callback and dispatch paths and loads the
        semaphore's scripts. Nothing is read but rows that cannot exist, and no row is written
        (on SQLite each of its transactions still takes the write lock for an instant).
        """
        with contextlib.ExitStack() as held:
            for _ in range(min(connections, _pool_size(self.engine))):
                # Connected, not in a transaction (SQLite's would take the write lock).
                held.enter_context(contextlib.closing(self.engine.raw_connection()))
        self.placer.warm()
        self.ingestor.warm()
        self.stores.slots.warm()
        self.dispatcher.warm(self.clock())

    def close(self) -> None:
        """Stop refilling, then close what was opened, the last opened first."""
        self.closing.set()
        for close in reversed(self.closers):
            close()
        self.engine.dispose()


@dataclass(frozen=True, slots=True)
class AfterEvent:
    """What follows a recorded provider event: ``free`` (the slots, a refill), and
    ``provider`` (a hang-up to ask for, if the event may call for one)."""

    free: Callable[[], None]
    provider: Callable[[], None] | None


def _pool_size(engine: Engine) -> int:
    """Connections ``engine``'s pool keeps open (SQLite's own pools: one)."""
    size = getattr(engine.pool, "size", None)
    return size() if callable(size) else 1


def build_runtime(
    settings: Settings,
    queue: TaskQueue,
    stores: ConcurrencyStores,
    *,
    refills: Refills,
    engine: Engine | None = None,
    provider: TelephonyProvider | None = None,
    clock: Callable[[], datetime] = utc_now,
    dispatch: DispatchConfig | None = None,
    calls: CallConfig | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Runtime:
    """A runtime over ``settings``; tests pass their own engine, provider, clock (and the
    ``sleep`` that goes with it) and configs.

    Without ``provider``, the configured provider's package builds one; a provider that
    reports in process (the simulator) gets event lanes, read into this runtime.
    """
    calling_rules.configure(settings.calling_rules_file)
    engine = engine or make_engine(settings.database_url)
    sessions = session_factory(engine)
    package = provider_package(settings.provider)
    calls = calls or CallConfig.from_settings(settings, account=package.pace_account(settings))
    closers: list[Callable[[], None]] = []
    lanes: EventLanes | None = None
    if provider is None:
        lanes = EventLanes() if package.reports_in_process else None
        provider = package.build(settings, lanes or _NO_EVENTS, clock)
        closers.append(provider.close)
    limits = health_limits(settings)
    if settings.assistant_stream_url is None and not package.reports_in_process:
        # The answer says the opening message at once: no stream to wait for. (The in-process
        # simulator plays an assistant's stream of its own.)
        limits = dataclasses.replace(limits, stream_connect_s=None)
    ender = Ender(sessions, stores.slots, clock, HealthGuard(sessions, limits, clock))
    ingestor = Ingestor(
        sessions,
        provider,
        ender,
        clock,
        unknown_is_machine=calls.amd_unknown_as_voicemail,
        connect_s=limits.stream_connect_s,
        greets_first=limits.greets_first,
    )
    resolver = Resolver(sessions, provider, ingestor, ender, clock)
    rebuilder = SlotRebuilder(sessions, stores.slots, call_lease_s=calls.call_lease_s)
    gate = StartGate(stores, calls, sleep, rebuilder)
    placer = Placer(sessions, gate, provider, ender, resolver, queue, clock, calls)
    dispatch = dispatch or DispatchConfig(
        lost_task_timeout_s=settings.lost_task_timeout_s, default_caps=calls.default_caps
    )
    pace = gate if calls.pace_at_claim else None
    dispatcher = Dispatcher(sessions, stores.slots, queue, dispatch, rebuilder, pace)
    refiller = Refiller(dispatcher, gate, placer, queue, clock)
    # A provider reporting in process (the simulator) knows only this process's calls: the
    # whole fleet's in embedded mode, where this process places them all.
    sees_every_call = settings.embedded or not package.reports_in_process
    reaper = Reaper(
        sessions, provider, resolver, ingestor, ender,
        call_lease_s=calls.call_lease_s, unplaced_after_s=settings.reap_unplaced_after_s,
    )  # fmt: skip
    runtime = Runtime(
        settings, engine, sessions, stores, provider, clock, queue, calls, ender, ingestor,
        resolver, gate, placer, dispatcher, refiller, reaper,
        Sweeper(sessions, provider, ingestor, sees_every_call=sees_every_call), rebuilder,
        _after_freed(refills, refiller, queue), closers,
    )  # fmt: skip
    if lanes is not None:
        # Runs after the provider's own close (closers run reversed): what it sent is taken in.
        closers.insert(0, LaneReaders(lanes, runtime.take_event).close)
    return runtime


def _after_freed(refills: Refills, refiller: Refiller, queue: TaskQueue) -> AfterFreed:
    if refills is Refills.HERE:
        return RefillHere(refiller, queue)
    if refills is Refills.QUEUE:
        return AskQueue(queue)
    return LEAVE


class _NoEvents:
    """The sink a provider that reports by webhook is given: it never sends to it."""

    def deliver(self, attempt_id: str, event: ProviderEvent) -> None:
        raise AssertionError("this provider reports by webhook, not in process")


_NO_EVENTS = _NoEvents()
