"""Celery's brokers for the tests that run real workers: Redis, and RabbitMQ when reachable.

A :class:`BrokerUnderTest` is what a fleet of workers under test needs: the broker's URL, the Redis
database that keeps the semaphore and the pacer (and, on Redis, is the broker too), and a
way to count and clear what waits in the queues. On RabbitMQ every test of the session
shares one virtual host of its own (see ``rabbitmq_url`` in tests/conftest.py), emptied
before each use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from celery import Celery

from dialer.queue.broker import queue_depths
from dialer.queue.celery import DIAL_QUEUE, EVENTS_QUEUE, create_celery
from dialer.settings import Settings
from tests.e2e.fleet import claim_redis_db, wait_for

#: The brokers tests of broker behaviour run on (the fixture's parameter).
BROKERS = ["redis", "rabbitmq"]
#: Queues of Celery's native delayed delivery on RabbitMQ (countdown tasks wait there).
DELAY_QUEUES = tuple(f"celery_delayed_{level}" for level in range(28))


@dataclass
class BrokerUnderTest:
    kind: str
    #: DIALER_BROKER_URL of the fleet.
    url: str
    #: DIALER_REDIS_URL of the fleet: a Redis database of its own (the broker too on Redis).
    redis_url: str

    @property
    def amqp(self) -> bool:
        return self.kind == "rabbitmq"

    def env(self) -> dict[str, str]:
        return {"DIALER_REDIS_URL": self.redis_url, "DIALER_BROKER_URL": self.url}

    def settings(self, **values: object) -> Settings:
        return Settings(redis_url=self.redis_url, broker_url=self.url, **values)  # type: ignore[arg-type]

    @contextmanager
    def celery(self) -> Iterator[Celery]:
        app = create_celery(self.settings())
        try:
            yield app
        finally:
            app.close()

    def ready(self, names: Sequence[str] = (DIAL_QUEUE, EVENTS_QUEUE)) -> dict[str, int]:
        """Messages waiting in each queue (taken ones and RabbitMQ's delayed ones excluded)."""
        with self.celery() as app:
            return queue_depths(app, tuple(names))

    def delayed(self) -> int:
        """Countdown tasks waiting in RabbitMQ's delayed delivery (none on Redis)."""
        return sum(self.ready(DELAY_QUEUES).values()) if self.amqp else 0

    def delete_topology(self) -> None:
        """RabbitMQ: delete the ``dial`` queue and the exchange countdown tasks are published
        to (as an operator could, or as a broker no worker started on yet lacks them)."""
        with self.celery() as app, app.connection_for_write() as connection:
            channel = connection.channel()
            channel.queue_delete(DIAL_QUEUE)
            channel.exchange_delete(DELAY_QUEUES[-1])
            channel.close()

            def gone() -> bool:  # a quorum queue's deletion ends after its delete-ok
                probe = connection.channel()
                try:
                    probe.queue_declare(DIAL_QUEUE, passive=True)
                except connection.channel_errors:
                    return True
                probe.close()
                return False

            wait_for("the dial queue to be gone", gone, timeout_s=30, interval_s=0.05)

    def purge(self) -> None:
        """Empty the task queues (and on RabbitMQ the delayed delivery's)."""
        with self.celery() as app, app.connection_for_write() as connection:
            for name in (DIAL_QUEUE, EVENTS_QUEUE, *(DELAY_QUEUES if self.amqp else ())):
                channel = connection.channel()
                try:
                    channel.queue_purge(name)
                except connection.channel_errors:
                    pass  # not declared yet
                finally:
                    channel.close()


@contextmanager
def broker_under_test(
    kind: str, redis_url: str, rabbitmq_url: str | None, redis_dbs: Sequence[int] = range(1, 15)
) -> Iterator[BrokerUnderTest]:
    """A broker of ``kind`` (on RabbitMQ: ``rabbitmq_url``'s vhost, emptied before and after)
    with a Redis database claimed for it among ``redis_dbs`` (flushed afterwards)."""
    own_redis = claim_redis_db(redis_url, redis_dbs)
    client = redis.Redis.from_url(own_redis, socket_timeout=5)
    url = own_redis if kind == "redis" else rabbitmq_url
    assert url is not None
    broker = BrokerUnderTest(kind=kind, url=url, redis_url=own_redis)
    try:
        broker.purge()
        yield broker
    finally:
        if broker.amqp:
            broker.purge()
        client.flushdb()
        client.close()
