"""One runtime builder per role of a process: the API, a worker, the scheduler, embedded.

The deployment mode is decided here, from :attr:`Settings.embedded`, and nowhere else:

====================  =====================================  ===========================
role                  distributed (``DIALER_REDIS_URL``)     embedded (no Redis)
====================  =====================================  ===========================
API                   Celery queue; freed slots ask it       records callbacks only
worker                Celery queue; refills in its thread    (none: refused)
scheduler             Celery queue; freed slots ask it       :func:`embedded_runtime`
====================  =====================================  ===========================

Every Redis client of a process is the one :func:`~dialer.concurrency.connection.open_redis`
opens, with the settings' timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from dialer.calls.config import CallConfig
from dialer.calls.dispatch import DispatchConfig
from dialer.clock import utc_now
from dialer.concurrency.connection import open_redis
from dialer.concurrency.stores import open_stores
from dialer.errors import ConfigurationError
from dialer.queue.inprocess import InProcessQueue, InProcessWorkers, RecordOnlyQueue
from dialer.runtime.core import Refills, Runtime, build_runtime
from dialer.settings import Settings
from dialer.telephony.base import TelephonyProvider

if TYPE_CHECKING:
    from celery import Celery

#: Threads the embedded scheduler runs dial and dispatch tasks on.
EMBEDDED_TASK_THREADS = 8


def api_runtime(
    settings: Settings, *, engine: Engine | None = None, clock: Callable[[], datetime] = utc_now
) -> Runtime:
    """The API's: it takes in provider callbacks. Distributed, a freed slot asks the workers
    for a dispatch; embedded, the scheduler process (the only one holding the semaphore)
    frees and refills at its next tick, and this one only records."""
    if settings.embedded:
        return build_runtime(
            settings,
            RecordOnlyQueue(),
            open_stores(settings),
            refills=Refills.ELSEWHERE,
            engine=engine,
            clock=clock,
        )
    return _distributed(settings, Refills.QUEUE, engine=engine, clock=clock)


def worker_runtime(settings: Settings, celery: Celery | None = None) -> Runtime:
    """A Celery worker's: it dials, and refills the slots of the calls it sees end. It sends
    its tasks with ``celery``, the worker's own app, when given."""
    if settings.embedded:
        raise ConfigurationError("DIALER_REDIS_URL must be set to run workers")
    return _distributed(settings, Refills.HERE, celery=celery)


def scheduler_runtime(settings: Settings) -> Runtime:
    """The scheduler's: distributed, it dispatches to the workers' queue; embedded, it is
    the one process that dials (:func:`embedded_runtime`)."""
    if settings.embedded:
        return embedded_runtime(settings)
    return _distributed(settings, Refills.QUEUE)


def embedded_runtime(
    settings: Settings,
    *,
    engine: Engine | None = None,
    provider: TelephonyProvider | None = None,
    clock: Callable[[], datetime] = utc_now,
    dispatch: DispatchConfig | None = None,
    calls: CallConfig | None = None,
    threads: int = EMBEDDED_TASK_THREADS,
) -> Runtime:
    """Everything in one process (the embedded scheduler, the demo): an in-memory semaphore
    and pacer, and dial and dispatch tasks on ``threads`` threads of this process. Run one
    such process per database: its limits hold only within it."""
    queue = InProcessQueue()
    runtime = build_runtime(
        settings,
        queue,
        open_stores(settings),
        refills=Refills.HERE,
        engine=engine,
        provider=provider,
        clock=clock,
        dispatch=dispatch,
        calls=calls,
    )
    runtime.closers.append(InProcessWorkers(queue, runtime, threads).close)
    return runtime


def _distributed(
    settings: Settings,
    refills: Refills,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    celery: Celery | None = None,
) -> Runtime:
    from dialer.queue.celery import CeleryQueue, create_celery  # Celery: distributed only

    client = open_redis(settings)
    sender = celery or create_celery(settings)
    runtime = build_runtime(
        settings,
        CeleryQueue(sender, client),
        open_stores(settings, client),
        refills=refills,
        engine=engine,
        clock=clock,
    )
    # Closed last (closers run in reverse): what closes before them may still use them.
    runtime.closers.insert(0, client.close)
    if celery is None:
        runtime.closers.insert(0, sender.close)
    return runtime
