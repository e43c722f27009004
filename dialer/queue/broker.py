"""What differs between Celery's two brokers, Redis and RabbitMQ, and nothing else.

``DIALER_BROKER_URL`` picks the broker (``DIALER_REDIS_URL`` by default). Only the task
messages move: the semaphore, the pacer and the dispatch-pending flags stay in Redis.

Redis (kombu's virtual transport): a queue is a list; an unacknowledged message waits in a
hash until it is acknowledged, or until the visibility timeout hands it to another worker. A
countdown task is delivered at once and held in the worker's memory until due.

RabbitMQ (AMQP 0-9-1): ``dial`` and ``events`` are quorum queues (replicated with Raft,
durable, every message on disk). A message a worker has not acknowledged goes back to the
queue the moment that worker's connection closes (a crash, a kill), with no timeout to wait
out. A countdown task waits in the broker, in Celery's native delayed delivery (a cascade of
quorum queues with message TTLs, ``celery_delayed_0..27``, bound by topic exchanges), so a
worker holds no countdown tasks: with quorum queues a worker's prefetch count is fixed
(they have no global QoS), and held tasks would fill it.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from dialer.errors import ConfigurationError
from dialer.settings import Settings

#: Unacked messages are redelivered after this long on Redis; far above any countdown
#: (kombu #337).
VISIBILITY_TIMEOUT_S = 2 * 3600
#: Native delayed delivery counts whole seconds (it routes a message through queues whose
#: TTLs are powers of two seconds, and Celery refuses a delay under one second): a shorter
#: countdown goes straight to the task's queue with its ETA, and the worker holds it for
#: less than this.
LEAST_BROKER_DELAY_S = 1.0


class BrokerKind(StrEnum):
    REDIS = "redis"
    AMQP = "amqp"


def broker_kind(url: str) -> BrokerKind:
    """The broker a URL names (the settings validated its scheme)."""
    if url.startswith(("amqp://", "amqps://")):
        return BrokerKind.AMQP
    if url.startswith(("redis://", "rediss://")):
        return BrokerKind.REDIS
    raise ConfigurationError(f"not a broker URL Celery can use here: {url.split(':', 1)[0]}://")


def broker_url(settings: Settings) -> str:
    if settings.broker_url is None:
        raise ConfigurationError(
            "DIALER_REDIS_URL (or DIALER_BROKER_URL) must be set to use Celery"
        )
    return settings.broker_url


def task_queues(kind: BrokerKind, names: tuple[str, ...]) -> tuple[Queue, ...] | None:
    """The queues Celery declares and consumes, or None for Celery's defaults (Redis).

    On RabbitMQ each is a durable quorum queue behind a topic exchange of its name: native
    delayed delivery hands a due message to the queue's exchange with a routing key of
    ``<delay bits>.<queue>``, which a direct exchange would not route (Celery then falls back
    to holding the task in the worker, and warns).
    """
    if kind is BrokerKind.REDIS:
        return None
    return tuple(
        Queue(  # type: ignore[no-untyped-call]
            name,
            Exchange(name, type="topic", durable=True),  # type: ignore[no-untyped-call]
            routing_key=name,
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )
        for name in names
    )


def broker_options(settings: Settings, queues: tuple[str, ...]) -> dict[str, Any]:
    """The part of the Celery configuration that depends on the broker."""
    kind = broker_kind(broker_url(settings))
    if kind is BrokerKind.REDIS:
        return {
            "broker_transport_options": {
                # An unacknowledged message is handed to another worker after this long:
                # far above any countdown, so no task runs twice because it waited.
                "visibility_timeout": VISIBILITY_TIMEOUT_S,
                # Every broker connection has the Redis timeouts: a stalled Redis fails a
                # send instead of hanging the request that made it.
                "socket_connect_timeout": settings.redis_connect_timeout_s,
                "socket_timeout": settings.redis_timeout_s,
            },
        }
    return {
        "broker_transport_options": {
            # Publisher confirms: each send waits for RabbitMQ's acknowledgement that the
            # queue has the message (on a quorum queue: on a majority of its replicas), and a
            # refusal raises at the sender. Without them a task the broker dropped (a node
            # lost mid-publish, a queue over its limit) vanishes without an error, and the
            # attempt waits for the outbox's lost-task timeout. (A message no queue takes
            # is confirmed all the same: the senders publish it mandatory, see CeleryQueue.)
            "confirm_publish": True,
            # Socket read and write timeouts, which also bound the wait for a confirm: a
            # broker that blocks publishers (a memory or disk alarm) fails the send after
            # DIALER_BROKER_TIMEOUT_S instead of hanging it.
            "read_timeout": settings.broker_timeout_s,
            "write_timeout": settings.broker_timeout_s,
        },
        # AMQP heartbeats: a worker whose broker went silent notices within about two
        # intervals, and reconnects (its unacknowledged tasks went back to the queue).
        "broker_heartbeat": settings.broker_heartbeat_s,
        "task_queues": task_queues(kind, queues),
        # A queue Celery creates on its own (a --queues name not declared above) is a quorum
        # queue too, behind a topic exchange.
        "task_default_queue_type": "quorum",
        "task_default_exchange_type": "topic",
        # Quorum queues have no global QoS (a channel-wide prefetch): the worker sees them
        # declared above and asks for a per-consumer prefetch instead. The prefetch count is
        # then fixed (concurrency x worker_prefetch_multiplier, 1): Celery cannot raise it
        # for the countdown tasks it holds, which is why countdowns wait in the broker.
        "worker_detect_quorum_queues": True,
        # Countdown tasks wait in the broker, in quorum queues too (durable like the task
        # queues): the worker declares that topology at start, and senders before their
        # first countdown (:func:`declare_topology`).
        "broker_native_delayed_delivery_queue_type": "quorum",
    }


def declare_topology(celery: Celery) -> None:
    """Declare the task queues and the native delayed delivery exchanges and queues, and bind
    the one to the other (RabbitMQ; idempotent).

    Workers do this at start; a sender does it before its first countdown task, which is
    published to the ``celery_delayed_27`` exchange: until someone declared it the broker
    would refuse the message, and until the task queue is bound to the delivery exchange a
    delayed message would be dropped when due.
    """
    with celery.connection_for_write() as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
        for queue in celery.amqp.queues.values():
            queue(connection.default_channel).declare()
            bind_queue_to_native_delayed_delivery_exchange(connection, queue)


class Topology:
    """Runs :func:`declare_topology` once per sender, before its first countdown task, and
    again when a send finds a queue or exchange gone."""

    def __init__(self, celery: Celery) -> None:
        self._celery = celery
        self._declared = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if not self._declared:
            self.declare()

    def declare(self) -> None:
        """Declare it now, whether or not it was (something was deleted under us)."""
        with self._lock:
            declare_topology(self._celery)
            self._declared = True


def queue_depths(celery: Celery, names: tuple[str, ...]) -> dict[str, int]:
    """Messages ready in each queue (not those taken and unacknowledged, nor countdown tasks
    still waiting in RabbitMQ's delayed delivery); a queue that does not exist yet has none.

    A passive declare, which both transports answer: on Redis the length of the queue's
    lists, on RabbitMQ the queue's own count.
    """
    depths: dict[str, int] = {}
    with celery.connection_for_read() as connection:
        for name in names:
            channel = connection.channel()
            try:
                depths[name] = int(channel.queue_declare(name, passive=True).message_count)
            except connection.channel_errors:  # no such queue (it closes an AMQP channel)
                depths[name] = 0
            finally:
                channel.close()
    return depths


def broker_apart(settings: Settings) -> bool:
    """True when Celery's broker is not the Redis of ``DIALER_REDIS_URL`` (RabbitMQ, or
    another Redis): a readiness check of that Redis does not cover it."""
    return settings.broker_url is not None and settings.broker_url != settings.redis_url


def check_broker(settings: Settings) -> None:
    """Raise unless Celery's broker accepts a connection (a readiness probe): one new
    connection, closed at once, within ``DIALER_REDIS_CONNECT_TIMEOUT_S``."""
    timeout_s = settings.redis_connect_timeout_s
    connection = Connection(broker_url(settings), connect_timeout=timeout_s)  # type: ignore[no-untyped-call]
    with connection:
        connection.ensure_connection(max_retries=0, timeout=timeout_s)  # type: ignore[no-untyped-call]
