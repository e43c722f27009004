"""The broker settings the at-most-once dial depends on, on Redis and on RabbitMQ (no broker
needed; tests/workers/test_brokers.py runs real workers on both)."""

from __future__ import annotations

import pytest

from dialer.calls.config import CallConfig
from dialer.queue.broker import broker_apart
from dialer.queue.celery import (
    DIAL_QUEUE,
    EVENTS_QUEUE,
    MAX_COUNTDOWN_S,
    VISIBILITY_TIMEOUT_S,
    CeleryQueue,
    celery_config,
)
from dialer.settings import Settings
from workers.celery_app import DialerWorker, run_worker


class _Sent:
    def __init__(self) -> None:
        self.countdowns: list[float | None] = []
        self.conf = type("Conf", (), {"broker_url": "redis://127.0.0.1:6379/0"})()

    def send_task(self, name: str, *, args: list[int], queue: str, countdown: float | None) -> None:
        self.countdowns.append(countdown)


def test_no_task_waits_longer_than_the_visibility_timeout() -> None:
    """A task held past the visibility timeout is handed to a second worker while the first
    still holds it (kombu's Redis transport): every countdown stays far below it."""
    sent = _Sent()
    queue = CeleryQueue(sent, redis_client=None)  # type: ignore[arg-type]
    queue.dial([1], 10 * VISIBILITY_TIMEOUT_S)
    queue.dial([2], 5.0)
    queue.dial([3])
    assert sent.countdowns == [MAX_COUNTDOWN_S, 5.0, None]
    assert MAX_COUNTDOWN_S * 10 <= VISIBILITY_TIMEOUT_S
    config = CallConfig(account="a")
    for wait_s in (config.slot_retry_s, config.provider_backoff_s, config.pace_wait_here_s):
        assert wait_s <= MAX_COUNTDOWN_S


def test_workers_reconnect_to_the_broker_however_long_it_is_gone() -> None:
    config = celery_config(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert config["broker_connection_retry"] is True
    assert config["broker_connection_max_retries"] is None
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["broker_transport_options"]["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    # Every broker connection has timeouts: a stalled Redis fails a send, never hangs it.
    assert config["broker_transport_options"]["socket_timeout"] > 0
    assert config["broker_transport_options"]["socket_connect_timeout"] > 0


class _Ends:
    """A Celery app stand-in whose worker ends at once, as it was told to."""

    def __init__(self, exit_code: int | None, asked: bool, owner: object) -> None:
        self.exit_code, self.asked, self.owner = exit_code, asked, owner

    def worker_main(self, argv: list[str]) -> None:
        if self.asked:
            self.owner.stop_requested.set()  # type: ignore[attr-defined]
        if self.exit_code is not None:
            raise SystemExit(self.exit_code)


def test_a_worker_that_stops_unasked_is_a_crash_to_start_again() -> None:
    """Celery reports kombu's failure on a Redis restart as a clean exit: only a stop that was
    asked for (a signal) counts as one."""
    worker = DialerWorker(Settings(redis_url="redis://127.0.0.1:6379/0"))
    for exit_code, asked, clean in [(None, True, True), (0, True, True), (0, False, False),
                                    (None, False, False), (1, True, False)]:  # fmt: skip
        worker.stop_requested.clear()
        worker.celery = _Ends(exit_code, asked, worker)  # type: ignore[assignment]
        assert run_worker(worker, ["worker"]) is clean, (exit_code, asked)


AMQP = Settings(
    redis_url="redis://127.0.0.1:6379/0",
    broker_url="amqp://dialer:pw@rabbit:5672/dialer",
    broker_heartbeat_s=15,
    broker_timeout_s=7.5,
    redis_connect_timeout_s=3.0,
)


def test_on_rabbitmq_the_task_queues_are_durable_quorum_queues_behind_topic_exchanges() -> None:
    config = celery_config(AMQP)
    queues = {queue.name: queue for queue in config["task_queues"]}
    assert set(queues) == {DIAL_QUEUE, EVENTS_QUEUE}
    for name, queue in queues.items():
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.durable
        # Native delayed delivery routes a due countdown task through a topic exchange.
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (
            name,
            "topic",
            name,
        )
    assert config["task_default_queue_type"] == "quorum"
    assert config["worker_detect_quorum_queues"] is True  # per-consumer QoS, not global
    assert config["broker_native_delayed_delivery_queue_type"] == "quorum"


def test_on_rabbitmq_sends_are_confirmed_and_bounded_and_workers_beat() -> None:
    config = celery_config(AMQP)
    assert config["broker_url"] == "amqp://dialer:pw@rabbit:5672/dialer"
    options = config["broker_transport_options"]
    assert options["confirm_publish"] is True
    assert options["read_timeout"] == options["write_timeout"] == 7.5
    assert "visibility_timeout" not in options  # Redis only: RabbitMQ redelivers on close
    assert config["broker_heartbeat"] == 15
    assert config["broker_connection_timeout"] == 3.0
    # As on Redis: acknowledged late, handed back on a lost worker, one task per thread.
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_connection_max_retries"] is None


def test_on_redis_the_queues_are_celerys_own() -> None:
    config = celery_config(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert config["broker_url"] == "redis://127.0.0.1:6379/0"
    assert "task_queues" not in config
    assert "confirm_publish" not in config["broker_transport_options"]


@pytest.mark.parametrize(
    ("redis_url", "broker_url", "apart"),
    [
        ("redis://h:6379/0", None, False),
        ("redis://h:6379/0", "redis://h:6379/0", False),
        ("redis://h:6379/0", "redis://other:6379/0", True),
        ("redis://h:6379/0", "amqp://guest:guest@h:5672//", True),
    ],
)
def test_readiness_checks_the_broker_when_it_is_not_the_redis_it_pings(
    redis_url: str, broker_url: str | None, apart: bool
) -> None:
    assert broker_apart(Settings(redis_url=redis_url, broker_url=broker_url)) is apart


def test_each_worker_has_a_node_name_of_its_own_unless_told_one() -> None:
    """On RabbitMQ two workers of one name cannot both start (their remote-control queue
    is exclusive): the default name carries the process id."""
    import os

    from workers.celery_app import with_node_name

    assert with_node_name(["worker"]) == ["worker", f"--hostname=dialer-{os.getpid()}@%h"]
    assert with_node_name(["worker", "--hostname=a@%h"]) == ["worker", "--hostname=a@%h"]
    assert with_node_name(["worker", "-n", "b@%h"]) == ["worker", "-n", "b@%h"]
