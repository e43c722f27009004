"""Sending tasks to Celery, and the Celery configuration both senders and workers use.

The workers' app and task bodies are in :mod:`workers.celery_app`; anything that only sends
(the API, the scheduler) needs no more than this module. Every connection to the broker has
the settings' Redis timeouts, so a Redis that stops answering fails a send instead of hanging
the request that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery

from dialer.concurrency.keys import dispatch_pending_key
from dialer.errors import ConfigurationError
from dialer.settings import Settings

DIAL_QUEUE = "dial"
EVENTS_QUEUE = "events"
DIAL_TASK = "dialer.dial"
DISPATCH_TASK = "dialer.dispatch_campaign"
#: Longest countdown any task uses, in seconds (provider backoff, CPS pacing, slot waits).
MAX_COUNTDOWN_S = 60
#: Unacked messages are redelivered after this long; far above any countdown (kombu #337).
VISIBILITY_TIMEOUT_S = 2 * 3600
#: On SIGTERM, running tasks get this long to finish before the worker goes down.
SOFT_SHUTDOWN_TIMEOUT_S = 30.0
#: Safety expiry of a campaign's dispatch-pending flag, in milliseconds, should a task be lost.
PENDING_DISPATCH_TTL_MS = 5_000


def celery_config(settings: Settings) -> dict[str, Any]:
    if settings.redis_url is None:
        raise ConfigurationError("DIALER_REDIS_URL must be set to use Celery")
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # A worker that loses its broker (a Redis restart, a network cut) reconnects, however
        # long that takes, rather than exit after 100 tries; tasks it had not acknowledged
        # come back (acks late) and find their attempts claimed, or dial them once.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_connection_timeout": settings.redis_connect_timeout_s,
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "socket_connect_timeout": settings.redis_connect_timeout_s,
            "socket_timeout": settings.redis_timeout_s,
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_TIMEOUT_S,
        "worker_enable_soft_shutdown_on_idle": True,
        "task_default_queue": EVENTS_QUEUE,
        "task_routes": {
            DIAL_TASK: {"queue": DIAL_QUEUE},
            DISPATCH_TASK: {"queue": EVENTS_QUEUE},
        },
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


def create_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings`` (no tasks registered: senders need none)."""
    celery = Celery("dialer")
    celery.conf.update(celery_config(settings))
    return celery


class CeleryQueue:
    """A :class:`~dialer.queue.base.TaskQueue` that sends Celery tasks (ids only).

    Dispatch requests of one campaign coalesce: a request made while one is queued and not yet
    started is dropped (the queued one will see the freed slot too). The flag lives in Redis
    (:func:`~dialer.concurrency.keys.dispatch_pending_key`), shared by every process.
    """

    def __init__(self, celery: Celery, redis_client: redis.Redis) -> None:
        self.celery = celery
        self.redis = redis_client

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        countdown = min(max(countdown_s, 0.0), MAX_COUNTDOWN_S)
        for attempt_id in attempt_ids:
            self.celery.send_task(
                DIAL_TASK, args=[attempt_id], queue=DIAL_QUEUE, countdown=countdown or None
            )

    def dispatch(self, campaign_id: str) -> None:
        key = dispatch_pending_key(campaign_id)
        if not self.redis.set(key, 1, nx=True, px=PENDING_DISPATCH_TTL_MS):
            return
        self.celery.send_task(DISPATCH_TASK, args=[campaign_id], queue=EVENTS_QUEUE)

    def dispatch_started(self, campaign_id: str) -> None:
        """Clear the campaign's pending flag as its dispatch starts: a slot freed from now on
        asks for another."""
        self.redis.delete(dispatch_pending_key(campaign_id))
