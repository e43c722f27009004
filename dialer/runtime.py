"""Wiring: one object holding a process's database, stores, provider, dialer and dispatcher.

Entry points (the API, the Celery worker, the scheduler, the demo) build one from the settings
with the task queue that fits them and pass it down; nothing below reads the environment.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dialer.clock import utc_now
from dialer.concurrency.stores import ConcurrencyStores, open_stores
from dialer.db.engine import make_engine, session_factory
from dialer.services.attempts import Ended
from dialer.services.dialing import DialConfig, Dialer, WebhookUrls
from dialer.services.dispatch import DispatchConfig, Dispatcher, StartHere
from dialer.settings import ProviderName, Settings
from dialer.telephony.base import TelephonyProvider
from dialer.telephony.events import EventKind

log = logging.getLogger(__name__)


class TaskQueue(Protocol):
    """Where dial and dispatch work goes: Celery in production, threads in embedded mode."""

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None: ...

    def dispatch(self, campaign_id: str) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    stores: ConcurrencyStores
    provider: TelephonyProvider
    dialer: Dialer
    dispatcher: Dispatcher
    clock: Callable[[], datetime]
    #: Where this process sends dial and dispatch work.
    queue: TaskQueue
    closers: list[Callable[[], None]] = field(default_factory=list)
    _refilling: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def refilling(self) -> bool:
        """True inside :meth:`refill` on this thread."""
        return getattr(self._refilling, "active", False)

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
        outer = self.refilling
        self._refilling.active = True
        try:
            return self._refill(campaign_id, most)
        finally:
            self._refilling.active = outer

    def _refill(self, campaign_id: str, most: int | None) -> int:
        targets = self.dispatcher.sharing_slots(campaign_id, self.clock())
        first = self.dispatcher.tick(
            self.clock(),
            campaign_ids=targets,
            most=1,
            start_here=StartHere(1, self.dialer.take_pace),
        )
        for job in first.started:
            self.dialer.place_started(job)
        dispatched = len(first.dispatched)
        if dispatched and (most is None or most > 1):
            # The call above went out first; now the rest of the free slots, for the queue.
            rest = None if most is None else most - 1
            more = self.dispatcher.tick(self.clock(), campaign_ids=targets, most=rest)
            dispatched += len(more.dispatched)
        return dispatched

    def warm(self, connections: int) -> None:
        """Pay the first-use costs now, so that the first calls do not wait for them.

        Opens up to ``connections`` database connections at once (as many as the pool keeps),
        compiles the first statements of the dial and the dispatch paths and loads the
        semaphore's scripts. Nothing is read but rows that cannot exist, and no row is written
        (on SQLite each of its transactions still takes the write lock for an instant).
        """
        with contextlib.ExitStack() as held:
            for _ in range(min(connections, _pool_size(self.engine))):
                # Connected, not in a transaction (SQLite's would take the write lock).
                held.enter_context(contextlib.closing(self.engine.raw_connection()))
        self.dialer.warm()
        self.dispatcher.warm(self.clock())

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.engine.dispose()


def _pool_size(engine: Engine) -> int:
    """Connections ``engine``'s pool keeps open (SQLite's own pools: one)."""
    size = getattr(engine.pool, "size", None)
    return size() if callable(size) else 1


def dial_config(settings: Settings) -> DialConfig:
    account = (
        f"twilio:{settings.twilio_account_sid}"
        if settings.provider is ProviderName.TWILIO
        else "simulator"
    )
    return DialConfig(
        ring_timeout_s=settings.ring_timeout_s,
        time_limit_s=settings.call_time_limit_s,
        machine_detection=settings.machine_detection,
        account=account,
        account_cps=settings.calls_per_second,
        amd_unknown_as_voicemail=settings.amd_unknown_as == "voicemail",
    )


def build_runtime(
    settings: Settings,
    queue: TaskQueue,
    *,
    engine: Engine | None = None,
    stores: ConcurrencyStores | None = None,
    provider: TelephonyProvider | None = None,
    clock: Callable[[], datetime] = utc_now,
    dispatch: DispatchConfig | None = None,
    dialing: DialConfig | None = None,
    refill_here: bool = False,
) -> Runtime:
    """A runtime over ``settings``; tests pass their own engine, stores, provider and clock.

    ``refill_here``: this process dials (a worker, the embedded scheduler), so the thread that
    ends a call refills its slot itself (see :class:`_Refills`); elsewhere (the API) a freed
    slot asks the queue for a dispatch.
    """
    engine = engine or make_engine(settings.database_url)
    sessions = session_factory(engine)
    stores = stores or open_stores(settings.redis_url)
    closers: list[Callable[[], None]] = []
    on_ended = _Refills(queue, here=refill_here)
    sink = _LateSink()
    if provider is None:
        provider = _provider(settings, sink, clock, closers)
    dialer = Dialer(
        sessions,
        stores.semaphore,
        stores.pacer,
        provider,
        WebhookUrls(str(settings.public_base_url)),
        redial=lambda attempt_id, countdown_s: queue.dial([attempt_id], countdown_s),
        on_ended=on_ended,
        clock=clock,
        config=dialing or dial_config(settings),
    )
    sink.target = dialer.deliver
    dispatcher = Dispatcher(
        sessions,
        stores.semaphore,
        queue.dial,
        dispatch or DispatchConfig(lost_task_timeout_s=settings.lost_task_timeout_s),
    )
    runtime = Runtime(
        settings, engine, sessions, stores, provider, dialer, dispatcher, clock, queue, closers
    )
    on_ended.runtime = runtime
    return runtime


class _Refills:
    """What a call's end sets off: its freed slot is filled now, not at the next tick.

    Where calls are dialed (``here``), the thread that ended the call refills the slot itself,
    claiming one call for it (the slot it freed), with no queue hop between one call's end and
    the next call. Elsewhere, and for an end that happens inside a refill (a dial refused
    outright), the queue is asked for a dispatch of the campaign instead, so refills never
    nest; a refill that fails asks the queue too.
    """

    def __init__(self, queue: TaskQueue, *, here: bool) -> None:
        self.queue = queue
        self.here = here
        self.runtime: Runtime | None = None

    def __call__(self, ended: Ended) -> None:
        if not self.here or self.runtime is None or self.runtime.refilling:
            self.queue.dispatch(ended.campaign_id)
            return
        try:
            self.runtime.refill(ended.campaign_id, most=1)
        except Exception:
            log.exception("refill of campaign %s failed; asking the queue", ended.campaign_id)
            self.queue.dispatch(ended.campaign_id)


#: Simulated callbacks ingested at once. A real provider's callbacks for different calls
#: arrive in parallel and several API workers take them; one call's keep their order here.
SIMULATED_WEBHOOK_LANES = 4


class _LateSink:
    """The simulator's event sink, bound to the dialer once it exists.

    Callbacks are ingested on :data:`SIMULATED_WEBHOOK_LANES` threads, a call's always on the
    same one (in the order the simulator sends them), so one slow ingest does not hold up
    every other call's callbacks, as it would not behind real webhooks.
    """

    def __init__(self, lanes: int = SIMULATED_WEBHOOK_LANES) -> None:
        self.target: Callable[[str, EventKind, dict[str, str]], None] | None = None
        self._lanes = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"simulated-webhooks-{n}")
            for n in range(lanes)
        ]

    def deliver(self, attempt_id: str, kind: EventKind, params: object) -> None:
        lane = self._lanes[hash(attempt_id) % len(self._lanes)]
        lane.submit(self._ingest, attempt_id, kind, dict(params))  # type: ignore[call-overload]

    def _ingest(self, attempt_id: str, kind: EventKind, params: dict[str, str]) -> None:
        assert self.target is not None
        try:
            self.target(attempt_id, kind, params)
        except Exception:
            log.exception("simulated event for attempt %s not ingested", attempt_id)

    def close(self) -> None:
        """Ingest what was sent, then stop (after the simulator stopped sending)."""
        for lane in self._lanes:
            lane.shutdown(wait=True)


def _provider(
    settings: Settings,
    sink: _LateSink,
    clock: Callable[[], datetime],
    closers: list[Callable[[], None]],
) -> TelephonyProvider:
    if settings.provider is ProviderName.TWILIO:
        from dialer.telephony.twilio import TwilioProvider

        return TwilioProvider.from_settings(settings)
    from dialer.telephony.simulation import parse_profile
    from dialer.telephony.simulator import SimulatedProvider

    profile = parse_profile(settings.simulator_profile) if settings.simulator_profile else None
    closers.append(sink.close)  # runs after the simulator's own close (closers run reversed)
    simulator = SimulatedProvider.realtime(
        sink,
        profile=profile,
        seed=settings.simulator_seed,
        time_scale=settings.simulator_time_scale,
    )
    closers.append(simulator.close)
    return simulator
