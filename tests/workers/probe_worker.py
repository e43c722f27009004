"""A real dialer worker (its Celery app, configuration and tasks) whose runtime only records.

``python -m tests.workers.probe_worker`` runs :func:`workers.celery_app.create_worker`'s app,
settings from the DIALER_* environment, with a runtime that appends each task it runs to the
Redis list ``PROBE_KEY`` (JSON: attempt, pid, redelivered, retries, at) and behaves as the
hash ``PROBE_KEY:plan`` says for that attempt: ``block-first`` (the first run sleeps until the
process dies), ``fail-first`` (the first run raises a transient error: Celery's retry). The
broker tests run it, so what they check is the product's broker configuration.
``PROBE_VISIBILITY_TIMEOUT_S`` shortens Redis's visibility timeout (and the interval of the
scans for tasks past it), so a killed worker's task comes back within a test.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import redis
from celery import current_task

from dialer.errors import ConcurrencyError
from dialer.settings import load_settings
from workers.celery_app import create_worker, run_worker


@dataclass
class ProbeRuntime:
    client: redis.Redis
    key: str

    def _record(self, attempt_id: int, kind: str) -> int:
        request = current_task.request
        runs = int(self.client.hincrby(f"{self.key}:runs", str(attempt_id), 1))
        record = {
            "task": kind,
            "attempt": attempt_id,
            "pid": os.getpid(),
            "redelivered": bool((request.delivery_info or {}).get("redelivered")),
            "retries": request.retries,
            "at": time.time(),
            "run": runs,
        }
        self.client.rpush(self.key, json.dumps(record))
        return runs

    def run_dial(self, attempt_id: int) -> SimpleNamespace:
        runs = self._record(attempt_id, "dial")
        plan = self.client.hget(f"{self.key}:plan", str(attempt_id))
        if plan == b"block-first" and runs == 1:
            time.sleep(3600)
        if plan == b"fail-first" and runs == 1:
            raise ConcurrencyError("the probe's first run fails, as a stalled Redis would")
        return SimpleNamespace(result="ok")

    def run_dispatch(self, campaign_id: str) -> int:
        self._record(int(campaign_id), "dispatch")
        return 0

    def warm(self, connections: int) -> None:
        return None

    def close(self) -> None:
        self.client.close()


def main() -> None:
    settings = load_settings()
    assert settings.redis_url is not None
    worker = create_worker(settings)
    visibility_s = os.environ.get("PROBE_VISIBILITY_TIMEOUT_S")
    if visibility_s:
        options = dict(worker.celery.conf.broker_transport_options)
        options["visibility_timeout"] = float(visibility_s)
        # And look for such tasks every second (kombu scans every 100 s by default).
        options["unacked_restore_interval"] = 1
        options["unacked_restore_throttle"] = 1
        worker.celery.conf.broker_transport_options = options
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    worker._runtime = ProbeRuntime(client, os.environ["PROBE_KEY"])  # type: ignore[assignment]
    argv = [
        "worker",
        "--pool=threads",
        "--concurrency=2",
        "--queues=dial,events",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    sys.exit(0 if run_worker(worker, argv) else 1)


if __name__ == "__main__":
    main()
