"""Sending tasks to Celery, and the Celery configuration both senders and workers use.

The workers' app and task bodies are in :mod:`workers.celery_app`; anything that only sends
(the API, the scheduler) needs no more than this module. The broker is Redis or RabbitMQ
(``DIALER_BROKER_URL``, see :mod:`dialer.queue.broker`); every connection to it has timeouts,
so a broker that stops answering fails a send instead of hanging the request that made it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis
from amqp.exceptions import ChannelError as AmqpChannelError
from celery import Celery
from kombu.utils.uuid import uuid

from dialer.concurrency.keys import dispatch_pending_key
from dialer.queue.broker import (
    LEAST_BROKER_DELAY_S,
    BrokerKind,
    Topology,
    broker_kind,
    broker_options,
    broker_url,
)
from dialer.queue.broker import VISIBILITY_TIMEOUT_S as VISIBILITY_TIMEOUT_S  # bounds countdowns
from dialer.settings import Settings

log = logging.getLogger(__name__)

DIAL_QUEUE = "dial"
EVENTS_QUEUE = "events"
DIAL_TASK = "dialer.dial"
DISPATCH_TASK = "dialer.dispatch_campaign"
#: Longest countdown any task uses, in seconds (provider backoff, CPS pacing, slot waits).
MAX_COUNTDOWN_S = 60
#: On SIGTERM, running tasks get this long to finish before the worker goes down.
SOFT_SHUTDOWN_TIMEOUT_S = 30.0
#: Safety expiry of a campaign's dispatch-pending flag, in milliseconds, should a task be lost.
PENDING_DISPATCH_TTL_MS = 5_000
#: AMQP reply codes of a send nothing could take: no queue bound (a mandatory message
#: returned), no such exchange.
NO_ROUTE, NOT_FOUND = 312, 404
#: Sends of one task that find no route before the error is raised, the queues declared again
#: before each, after a pause growing by this many seconds.
ROUTE_ATTEMPTS = 4
ROUTE_RETRY_PAUSE_S = 0.25


def celery_config(settings: Settings) -> dict[str, Any]:
    """The configuration senders and workers share; the broker's own part comes from
    :func:`~dialer.queue.broker.broker_options`."""
    return {
        "broker_url": broker_url(settings),
        "broker_connection_retry_on_startup": True,
        # A worker that loses its broker (a restart, a network cut) reconnects, however long
        # that takes, rather than exit after 100 tries; tasks it had not acknowledged come
        # back (acks late) and find their attempts claimed, or dial them once.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_connection_timeout": settings.redis_connect_timeout_s,
        **broker_options(settings, (DIAL_QUEUE, EVENTS_QUEUE)),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        # A task is acknowledged when it ends, not when it starts: one whose worker died
        # runs again (Redis: after the visibility timeout; RabbitMQ: once the dead worker's
        # connection closes). Every task is idempotent.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A worker takes no more tasks than it runs at once (its concurrency).
        "worker_prefetch_multiplier": 1,
        # A task running when the broker connection drops runs to its end (a dial in flight
        # gets the provider's answer and records the call id) rather than being cancelled;
        # its message, which can no longer be acknowledged, comes back (at once on
        # RabbitMQ) and finds its attempt claimed. Celery warns that this default changes
        # in 6.0: set here, it stays.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
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
        self._amqp = broker_kind(str(celery.conf.broker_url)) is BrokerKind.AMQP
        self._topology = Topology(celery)

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        countdown = min(max(countdown_s, 0.0), MAX_COUNTDOWN_S)
        for attempt_id in attempt_ids:
            self._send(DIAL_TASK, [attempt_id], DIAL_QUEUE, countdown)

    def dispatch(self, campaign_id: str) -> None:
        key = dispatch_pending_key(campaign_id)
        if not self.redis.set(key, 1, nx=True, px=PENDING_DISPATCH_TTL_MS):
            return
        self._send(DISPATCH_TASK, [campaign_id], EVENTS_QUEUE, 0.0)

    def _send(self, name: str, args: list[Any], queue: str, countdown_s: float) -> None:
        if not self._amqp:
            self.celery.send_task(name, args=args, queue=queue, countdown=countdown_s or None)
            return
        for attempt in range(1, ROUTE_ATTEMPTS + 1):
            try:
                self._send_amqp(name, args, queue, countdown_s)
                return
            except AmqpChannelError as exc:
                if exc.reply_code not in (NO_ROUTE, NOT_FOUND) or attempt == ROUTE_ATTEMPTS:
                    raise
                # A queue or exchange was deleted under this process, which remembers
                # having declared it (a confirmed message nobody could route would be
                # lost): declare them all again and send once more. Right after a deletion
                # RabbitMQ may still be removing the old queue's bindings: a short pause.
                log.warning(
                    "a send to %s found no route (%s): declaring the queues again", queue, exc
                )
                time.sleep(ROUTE_RETRY_PAUSE_S * (attempt - 1))
                self._topology.declare()

    def _send_amqp(self, name: str, args: list[Any], queue: str, countdown_s: float) -> None:
        """RabbitMQ, every message mandatory (one no queue takes is returned, and raises).

        A countdown of a second or more waits in the broker (native delayed delivery, whole
        seconds; the message's ETA keeps the fraction, which the worker waits out). A
        shorter one goes straight to the queue with its ETA: Celery refuses native delays
        under a second, and the worker holds such a task for less than that."""
        if not countdown_s or countdown_s >= LEAST_BROKER_DELAY_S:
            if countdown_s:
                self._topology.ensure()
            self.celery.send_task(
                name, args=args, queue=queue, countdown=countdown_s or None, mandatory=True
            )
            return
        amqp = self.celery.amqp
        message = amqp.create_task_message(uuid(), name, args, {}, countdown=countdown_s)
        with self.celery.producer_or_acquire() as producer:
            amqp.send_task_message(
                producer, name, message, queue=amqp.queues[queue], mandatory=True
            )

    def dispatch_started(self, campaign_id: str) -> None:
        """Clear the campaign's pending flag as its dispatch starts: a slot freed from now on
        asks for another."""
        self.redis.delete(dispatch_pending_key(campaign_id))
