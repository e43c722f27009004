"""``dialer worker --hostname NAME --events``: the worker answers under its node name (``%h``
expanded) and sends task events, which is what Flower and ``celery inspect`` need."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from dialer.db.migrate import upgrade
from dialer.queue.celery import DISPATCH_TASK, EVENTS_QUEUE, create_celery
from dialer.settings import Settings
from tests.conftest import scratch_database_url
from tests.e2e.fleet import (
    Processes,
    base_env,
    claim_redis_db,
    collecting_failures,
    wait_for,
    wait_worker_ready,
)

#: Redis databases the processes may take (the e2e fleet scans from 14 down).
BROKER_DBS = range(1, 15)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_a_named_worker_with_events_answers_and_reports_its_tasks(
    redis_url: str, tmp_path: Path
) -> None:
    # Celery's queue names are fixed: the processes get a Redis database of their own.
    broker_url = claim_redis_db(redis_url, BROKER_DBS)
    broker = redis.Redis.from_url(broker_url, socket_timeout=5)
    database_url, drop = scratch_database_url("sqlite", tmp_path)
    upgrade(database_url)
    env = base_env(DIALER_DATABASE_URL=database_url, DIALER_REDIS_URL=broker_url)
    node = f"probe@{socket.gethostname()}"
    processes = Processes(tmp_path)
    celery = create_celery(Settings(database_url=database_url, redis_url=broker_url))
    try:
        worker = processes.spawn(
            "worker",
            ["worker", "--concurrency", "1", "--hostname", "probe@%h", "--events"],
            env,
        )
        with collecting_failures(processes):
            wait_worker_ready(worker)
            assert f"{node} ready." in worker.text()
            assert celery.control.ping(destination=[node], timeout=5.0) == [{node: {"ok": "pong"}}]
            stats = celery.control.inspect(destination=[node], timeout=5.0).stats()
            assert stats is not None
            assert set(stats) == {node}

            events: list[dict[str, Any]] = []
            listening = threading.Event()
            with celery.connection_for_read() as connection:
                receiver = celery.events.Receiver(
                    connection, handlers={"*": events.append}, node_id="test-events"
                )
                capture = threading.Thread(target=_capture, args=(receiver, listening), daemon=True)
                capture.start()
                listening.wait(10)
                celery.send_task(DISPATCH_TASK, args=["no-such-campaign"], queue=EVENTS_QUEUE)
                wait_for(
                    "the worker's task events",
                    lambda: (
                        {"task-received", "task-succeeded"}
                        <= {e["type"] for e in events if e.get("hostname") == node}
                    ),
                    timeout_s=30,
                    describe=lambda: str([e["type"] for e in events]),
                )
                receiver.should_stop = True
                capture.join(10)
    finally:
        processes.stop_all()
        celery.close()
        broker.flushdb()
        broker.close()
        drop()


def _capture(receiver: Any, listening: threading.Event) -> None:
    with contextlib.suppress(Exception):
        for _ in receiver.consume(limit=None, timeout=None, wakeup=True):
            listening.set()
