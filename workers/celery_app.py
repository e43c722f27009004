"""The Celery app factory and the task queue that sends to it.

Task bodies are one line each: they hand ids to :mod:`dialer.services`. The runtime (database,
semaphore, provider) is built once per worker process, after the fork.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery, signals

from dialer.runtime import SIMULATED_WEBHOOK_LANES, Runtime, build_runtime
from dialer.settings import Settings
from workers.celery_config import DIAL_QUEUE, EVENTS_QUEUE, MAX_COUNTDOWN_S, celery_config

#: While set, a dispatch of the campaign is queued and not started: more requests coalesce.
PENDING_DISPATCH_KEY = "dialer:dispatch-pending:{campaign_id}"
#: Safety expiry of that flag, in milliseconds, should a task be lost.
PENDING_DISPATCH_TTL_MS = 5_000


class CeleryQueue:
    """A :class:`~dialer.runtime.TaskQueue` that sends Celery tasks (ids only).

    Slot-freed dispatch requests of one campaign coalesce: a request made while one is queued
    and not yet started is dropped (the queued one will see the freed slot too).
    """

    def __init__(self, celery: Celery, redis_client: Any | None = None) -> None:
        self.celery = celery
        self.redis = redis_client

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        countdown = min(max(countdown_s, 0.0), MAX_COUNTDOWN_S)
        for attempt_id in attempt_ids:
            self.celery.send_task(
                "dialer.dial", args=[attempt_id], queue=DIAL_QUEUE, countdown=countdown or None
            )

    def dispatch(self, campaign_id: str) -> None:
        if self.redis is not None:
            key = PENDING_DISPATCH_KEY.format(campaign_id=campaign_id)
            if not self.redis.set(key, 1, nx=True, px=PENDING_DISPATCH_TTL_MS):
                return
        self.celery.send_task("dialer.dispatch_campaign", args=[campaign_id], queue=EVENTS_QUEUE)


def celery_queue(celery: Celery, settings: Settings) -> CeleryQueue:
    """The queue of this process (one Redis client for its dispatch flags)."""
    cached: CeleryQueue | None = getattr(celery, "dialer_queue", None)
    if cached is None:
        import redis

        client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        cached = CeleryQueue(celery, client)
        celery.dialer_queue = cached
    return cached


def create_celery(settings: Settings) -> Celery:
    celery = Celery("dialer")
    celery.conf.update(celery_config(settings))
    state: dict[str, Runtime] = {}
    building = threading.Lock()

    def runtime() -> Runtime:
        if "rt" not in state:
            with building:  # a pool of threads shares one runtime: build it once
                if "rt" not in state:
                    state["rt"] = build_runtime(
                        settings, celery_queue(celery, settings), refill_here=True
                    )
        return state["rt"]

    # Not shared: a shared task is added to every app created later in the process, so a
    # second app (tests make several) would run the first one's task, with its runtime.
    @celery.task(name="dialer.dial", acks_late=True, shared=False)
    def dial(attempt_id: int) -> str:
        """Place the call of one queued attempt, at most once (see dialer.services.dialing)."""
        return runtime().dialer.dial(int(attempt_id))

    @celery.task(name="dialer.dispatch_campaign", acks_late=True, shared=False)
    def dispatch_campaign(campaign_id: str) -> int:
        """Slots of the campaign freed (a callback the API took ended a call, a dial failed
        in a refill, the campaign started): dispatch into them now.

        The first call claimed is dialed right here (see :meth:`Runtime.refill`).
        """
        rt = runtime()
        queue = celery_queue(celery, settings)
        if queue.redis is not None:
            # Cleared as the dispatch starts: a slot freed from now on asks for another.
            queue.redis.delete(PENDING_DISPATCH_KEY.format(campaign_id=campaign_id))
        return rt.refill(str(campaign_id))

    @signals.worker_ready.connect(weak=False)
    def _warm_threads(sender: Any, **_: Any) -> None:
        """A pool of threads runs tasks in this process: get its runtime ready before the first
        task instead of during it (the worker answers pings once this is done). A prefork
        pool's processes build theirs at their first task: warming them at start would count
        against the time Celery gives a new process to report itself up."""
        from celery.concurrency.prefork import TaskPool as Prefork

        if not isinstance(sender.pool, Prefork):
            runtime().warm(connections=sender.controller.concurrency + SIMULATED_WEBHOOK_LANES)

    @signals.worker_process_shutdown.connect(weak=False)  # each process of a prefork pool
    @signals.worker_shutdown.connect(weak=False)  # the worker itself (a pool of threads)
    def _close(**_: Any) -> None:
        with building:
            if "rt" in state:
                state.pop("rt").close()

    celery.runtime = runtime
    return celery
