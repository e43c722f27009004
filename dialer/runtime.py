"""Wiring: one object holding a process's database, stores, provider, dialer and dispatcher.

Entry points (the API, the Celery worker, the scheduler, the demo) build one from the settings
with the task queue that fits them and pass it down; nothing below reads the environment.
"""

from __future__ import annotations

import contextlib
import logging
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
from dialer.services.dialing import REQUEUED, DialConfig, Dialer, WebhookUrls
from dialer.services.dispatch import DispatchConfig, Dispatcher
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
    closers: list[Callable[[], None]] = field(default_factory=list)

    def refill(self, campaign_id: str) -> int:
        """A slot of the campaign freed: dispatch into it, and dial the first call claimed in
        this thread, a queue hop sooner than a dial task (the rest go to the queue).

        If this process dies before dialing the kept call, the outbox re-sends it; if its dial
        has to wait (no slot, the pace, the provider busy), it is marked handed off like the
        others. Returns how many calls were dispatched.
        """
        result = self.dispatcher.tick(self.clock(), campaign_ids=[campaign_id], keep=1)
        for attempt_id in result.kept:
            if self.dialer.dial(attempt_id) in REQUEUED:
                self.dispatcher.mark_handed_off([attempt_id], self.clock())
        return len(result.dispatched)

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
) -> Runtime:
    """A runtime over ``settings``; tests pass their own engine, stores, provider and clock."""
    engine = engine or make_engine(settings.database_url)
    sessions = session_factory(engine)
    stores = stores or open_stores(settings.redis_url)
    closers: list[Callable[[], None]] = []

    def on_ended(ended: Ended) -> None:
        # A slot freed: fill it now rather than at the next tick.
        queue.dispatch(ended.campaign_id)

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
    return Runtime(settings, engine, sessions, stores, provider, dialer, dispatcher, clock, closers)


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
