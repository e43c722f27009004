"""How many messages wait in each Celery queue, asked of the broker when a scrape asks.

The broker is named by its URL: Redis (``redis://``, ``rediss://``, ``unix://``: the length of
the queue's lists, one per priority step kombu uses) or AMQP (``amqp://``, ``amqps://``,
``pyamqp://``: a passive ``queue.declare``, which reports the ready messages without creating
the queue). Tasks held back by a countdown are not waiting in the queue (Celery's workers hold
them until they fall due) and are not counted. A broker that does not answer leaves the gauge
out of that scrape (logged), rather than fail the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dialer.errors import ConfigurationError
from dialer.queue.broker import BrokerKind, broker_kind
from dialer.queue.celery import DIAL_QUEUE, EVENTS_QUEUE

log = logging.getLogger(__name__)

QUEUES = (DIAL_QUEUE, EVENTS_QUEUE)
#: kombu's Redis transport keeps a queue's messages of priority p > 0 in the list
#: ``<queue><SEP><p>``, for its default priority steps.
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)


class QueueDepth:
    """Reads the depth of ``queues`` on the broker at ``broker_url``; ``timeout_s`` bounds
    each connection and command."""

    def __init__(
        self, broker_url: str, queues: Sequence[str] = QUEUES, *, timeout_s: float = 2.0
    ) -> None:
        try:
            self._kind = broker_kind(broker_url)
        except ConfigurationError as exc:
            scheme = broker_url.partition("://")[0]
            raise ValueError(f"no queue depth for a broker of scheme {scheme!r}") from exc
        self._url = broker_url
        self._queues = tuple(queues)
        self._timeout_s = timeout_s
        self._redis: Any = None

    def read(self) -> dict[str, int]:
        """Messages waiting in each queue, by name."""
        if self._kind is BrokerKind.REDIS:
            return self._read_redis()
        return self._read_amqp()

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def _read_redis(self) -> dict[str, int]:
        import redis

        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self._url,
                socket_connect_timeout=self._timeout_s,
                socket_timeout=self._timeout_s,
            )
        with self._redis.pipeline(transaction=False) as pipe:
            for queue in self._queues:
                pipe.llen(queue)
                for step in _REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_REDIS_PRIORITY_SEP}{step}")
            lengths = pipe.execute()
        per_queue = 1 + len(_REDIS_PRIORITY_STEPS)
        return {
            queue: sum(int(n) for n in lengths[i * per_queue : (i + 1) * per_queue])
            for i, queue in enumerate(self._queues)
        }

    def _read_amqp(self) -> dict[str, int]:
        from amqp.exceptions import NotFound
        from kombu.connection import Connection

        depths: dict[str, int] = {}
        with Connection(self._url, connect_timeout=self._timeout_s) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            try:
                for queue in self._queues:
                    try:
                        declared = channel.queue_declare(queue=queue, passive=True)
                    except NotFound:  # never declared: nothing waits in it
                        depths[queue] = 0
                        channel = conn.channel()  # the broker closed the channel
                        continue
                    depths[queue] = int(declared.message_count)
            finally:
                channel.close()
        return depths


class QueueDepthGauge(Collector):
    """``dialer_queue_depth{queue}``, read from the broker at each scrape."""

    def __init__(self, depth: QueueDepth) -> None:
        self._depth = depth

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())

    def close(self) -> None:
        self._depth.close()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depths = self._depth.read()
        except Exception:
            log.warning("queue depth not read from the broker", exc_info=True)
            return
        family = GaugeMetricFamily(
            "dialer_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for queue, n in depths.items():
            family.add_metric([queue], n)
        yield family
