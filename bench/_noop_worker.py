"""A Celery worker whose only task does nothing: the ceiling ``throughput.py`` measures against.

The same Celery configuration as the dialer's workers (:func:`dialer.queue.celery.create_celery`:
the broker, acks late, prefetch 1), the same pool, thread count and switch interval as
``dialer worker``; it consumes ``--queues`` (none of the dialer's tasks are registered).
"""

from __future__ import annotations

import argparse
import os
import sys

from dialer.queue.celery import create_celery
from dialer.settings import Settings
from workers.celery_app import THREAD_SWITCH_INTERVAL_S

NOOP_TASK = "bench.noop"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--queues", default="noop-idle")
    args = parser.parse_args()
    celery = create_celery(
        Settings(database_url="sqlite://", redis_url=os.environ["DIALER_REDIS_URL"])
    )

    @celery.task(name=NOOP_TASK, shared=False)
    def noop() -> None:
        """Nothing: the cost of a task is Celery's and the broker's alone."""

    sys.setswitchinterval(THREAD_SWITCH_INTERVAL_S)
    celery.worker_main(
        [
            "worker",
            f"--concurrency={args.concurrency}",
            "--pool=threads",
            f"--queues={args.queues}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ]
    )


if __name__ == "__main__":
    main()
