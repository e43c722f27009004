"""The queue depth, read from the broker: Redis lists, or an AMQP passive declare."""

from __future__ import annotations

import contextlib
import socket
import uuid

import pytest
import redis

from dialer.observability.queues import QueueDepth, QueueDepthGauge
from tests.observability.scrape import Scraped

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def test_redis_depth_counts_every_priority_list_of_each_queue(
    real_redis: tuple[redis.Redis, str], redis_url: str
) -> None:
    client, prefix = real_redis
    dial, events = f"{prefix}dial", f"{prefix}events"
    client.rpush(dial, "a", "b", "c")
    client.rpush(f"{dial}\x06\x163", "d")
    client.rpush(f"{dial}\x06\x169", "e")
    depth = QueueDepth(redis_url, (dial, events))
    try:
        assert depth.read() == {dial: 5, events: 0}
        client.rpush(events, "x")
        scraped = Scraped(_exposition(QueueDepthGauge(depth)))
        assert scraped.value("dialer_queue_depth", queue=dial) == 5
        assert scraped.value("dialer_queue_depth", queue=events) == 1
    finally:
        depth.close()


def test_a_broker_that_does_not_answer_leaves_the_gauge_out() -> None:
    depth = QueueDepth(f"redis://127.0.0.1:{_closed_port()}/0", timeout_s=0.5)
    assert "dialer_queue_depth" not in Scraped(_exposition(QueueDepthGauge(depth))).types


def test_an_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="sqs"):
        QueueDepth("sqs://queue")


@pytest.fixture
def rabbitmq() -> str:
    """RabbitMQ's URL; skipped where no server listens on its default port."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(("127.0.0.1", 5672)) != 0:
            pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    return RABBITMQ_URL


def test_amqp_depth_is_a_passive_declare_and_a_missing_queue_is_empty(rabbitmq: str) -> None:
    from kombu import Connection, Exchange, Queue

    name = f"dialer-test-{uuid.uuid4().hex[:8]}"
    missing = f"{name}-missing"
    with Connection(rabbitmq, connect_timeout=5) as conn:
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
        channel = conn.channel()
        try:
            queue(channel).declare()
            producer = conn.Producer(channel)
            for n in range(3):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=name)
            depth = QueueDepth(rabbitmq, (name, missing, name))
            assert depth.read() == {name: 3, missing: 0}
        finally:
            with contextlib.suppress(Exception):
                queue(conn.channel()).delete()
                queue.exchange(conn.channel()).delete()


def _exposition(collector: QueueDepthGauge) -> str:
    from dialer.observability.exposition import Scrape

    text = Scrape([collector]).text().decode()
    return text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
