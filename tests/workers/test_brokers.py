"""What the dialer asks of its broker, on Redis and on RabbitMQ, with real worker processes.

The workers are the product's (its Celery app, configuration and tasks; see
:mod:`tests.workers.probe_worker`), the tasks are sent as the product sends them
(:class:`~dialer.queue.celery.CeleryQueue`): a dial task is acknowledged only once it ran, so
a worker killed in the middle of one loses nothing; a countdown task runs when due, never
before; a task that meets a transient error comes back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import redis

from dialer.queue.celery import DIAL_QUEUE, CeleryQueue, create_celery
from tests.brokers import BROKERS, BrokerUnderTest, broker_under_test
from tests.e2e.fleet import ROOT, base_env, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

#: Runs the probe worker after asking Linux to SIGKILL it when the test process dies.
_DIE_WITH_PARENT = (
    "import ctypes, os, runpy, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "runpy.run_module('tests.workers.probe_worker', run_name='__main__')\n"
)
#: Redis's visibility timeout in the probe workers: a killed worker's task comes back after it.
REDIS_VISIBILITY_S = 2


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, redis_url: str) -> Iterator[BrokerUnderTest]:
    rabbitmq = request.getfixturevalue("rabbitmq_url") if request.param == "rabbitmq" else None
    with broker_under_test(request.param, redis_url, rabbitmq) as under_test:
        yield under_test


@dataclass
class Probe:
    broker: BrokerUnderTest
    logs: Path
    key: str = "probe"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.broker.redis_url, socket_timeout=5)
        settings = self.broker.settings()
        self.sender = create_celery(settings)
        self.queue = CeleryQueue(self.sender, self.client)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"{name}.log"
        env = base_env(**self.broker.env(), PROBE_KEY=self.key, DIALER_LOG_LEVEL="INFO")
        if not self.broker.amqp:
            env["PROBE_VISIBILITY_TIMEOUT_S"] = str(REDIS_VISIBILITY_S)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid())],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited: {self.log(name)}")
            return " ready." in self.log(name)

        wait_for(f"{name} to be ready", ready, timeout_s=60, interval_s=0.1)
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def plan(self, attempt_id: int, what: str) -> None:
        self.client.hset(f"{self.key}:plan", str(attempt_id), what)

    def runs(self, attempt_id: int | None = None) -> list[dict[str, Any]]:
        records = [json.loads(r) for r in self.client.lrange(self.key, 0, -1)]
        return [r for r in records if attempt_id is None or r["attempt"] == attempt_id]

    def wait_runs(self, attempt_id: int, count: int, timeout_s: float = 60) -> list[dict[str, Any]]:
        return wait_for(
            f"{count} run(s) of attempt {attempt_id}",
            lambda: (found := self.runs(attempt_id)) and len(found) >= count and found,
            timeout_s=timeout_s,
            describe=lambda: f"runs {self.runs()}; logs {[self.log(n) for n in self._names()]}",
        )

    def _names(self) -> list[str]:
        return [p.name.removesuffix(".log") for p in self.logs.glob("*.log")]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.sender.close()
        self.client.close()


@pytest.fixture
def probe(broker: BrokerUnderTest, tmp_path: Path) -> Iterator[Probe]:
    found = Probe(broker, tmp_path)
    try:
        yield found
    finally:
        found.close()


def test_a_dial_task_is_acked_late_and_delivered_again_after_its_worker_is_killed(
    probe: Probe,
) -> None:
    first = probe.start_worker("worker-1")
    probe.plan(1, "block-first")
    probe.queue.dial([1])
    [taken] = probe.wait_runs(1, 1)
    assert taken["pid"] == first.pid
    # Taken, not acknowledged: nothing left in the queue, yet nothing lost either.
    assert probe.broker.ready()[DIAL_QUEUE] == 0

    os.killpg(first.pid, signal.SIGKILL)  # mid-task
    first.wait(timeout=10)
    second = probe.start_worker("worker-2")
    _, again = probe.wait_runs(1, 2)
    assert again["pid"] == second.pid
    if probe.broker.amqp:
        # RabbitMQ handed it back the moment the dead worker's connection closed.
        assert again["redelivered"] is True

    # The second run ended, and acknowledged it: a warm stop hands back what it had not
    # acknowledged, and nothing comes back.
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0
    assert probe.broker.ready()[DIAL_QUEUE] == 0
    assert probe.broker.delayed() == 0
    assert len(probe.runs(1)) == 2


def test_countdown_tasks_run_when_due_and_a_transient_error_is_retried(probe: Probe) -> None:
    if probe.broker.amqp:
        # The sender declared the dial queue (its first send); then the queue is deleted,
        # and the exchange countdown tasks go to is not there (no worker started yet). The
        # sender declares what its countdowns need first; a send that finds its queue gone
        # (a mandatory message returned) declares everything again and goes through.
        probe.queue.dial([10])
        probe.broker.delete_topology()
    countdowns = {11: 0.4, 12: 1.5, 13: 2.5}
    sent_at = {}
    for attempt_id, countdown_s in countdowns.items():
        sent_at[attempt_id] = time.time()
        probe.queue.dial([attempt_id], countdown_s)
    if probe.broker.amqp:
        # A second or more waits in RabbitMQ (native delayed delivery), not in a worker,
        # whose prefetch a quorum queue keeps fixed.
        assert probe.broker.delayed() >= 1
    probe.plan(14, "fail-first")
    probe.queue.dial([14])
    probe.start_worker("worker-1")

    for attempt_id, countdown_s in countdowns.items():
        [run] = probe.wait_runs(attempt_id, 1)
        # Never before it is due (the timer may fire a few milliseconds early).
        assert run["at"] >= sent_at[attempt_id] + countdown_s - 0.05, (attempt_id, run)
    failed, retried = probe.wait_runs(14, 2)
    assert (failed["retries"], retried["retries"]) == (0, 1)
    time.sleep(0.5)  # no third run trails the retry
    assert len(probe.runs(14)) == 2
    assert probe.broker.ready()[DIAL_QUEUE] == 0


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_a_worker_whose_rabbitmq_connection_drops_reconnects_and_gets_its_task_back(
    probe: Probe,
) -> None:
    """As a RabbitMQ node restart or a cut network would: the broker closes every connection
    of the fleet's vhost while a task runs."""
    worker = probe.start_worker("worker-1")
    probe.plan(21, "block-first")
    probe.queue.dial([21])
    probe.wait_runs(21, 1)

    vhost = unquote(urlsplit(probe.broker.url).path.lstrip("/"))
    subprocess.run(
        ["rabbitmqctl", "--quiet", "close_all_connections", "-p", vhost, "test: connection cut"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # The task it had not acknowledged came back, to the worker reconnected...
    _, again = probe.wait_runs(21, 2)
    assert again["redelivered"] is True
    assert again["pid"] == worker.pid
    # ...which goes on taking new ones, and never stopped.
    probe.queue.dial([22])
    probe.wait_runs(22, 1)
    assert worker.poll() is None, probe.log("worker-1")
