"""Throughput: call attempts per second end to end, against a no-op Celery task's rate.

Run from the repository root (``make bench``; ``--workers N`` or THROUGHPUT_WORKERS, default
2). Two measurements on the same broker (a Redis database of the bench's own:
DIALER_TEST_REDIS_URL's, flushed before and after) and the same worker settings (Celery's
pool of threads, 6 threads a process, acks late, prefetch 1):

- ``dialer``: a campaign of ``THROUGHPUT_RECIPIENTS`` (3,000) recipients, ``max_concurrency``
  100, no pace limit to speak of, every call zero-length (the simulator: answered, hung up
  at once), through the whole path: the scheduler and the API's start (a dispatch request),
  N ``dialer worker`` processes claiming, dialing, taking in the callbacks, counting, and
  refilling the freed slots; a scratch PostgreSQL database. Attempts per second from the
  start action to the campaign's completion (``attempts_per_s``), and over the steady middle
  of the run (``steady_attempts_per_s``, from the dial times).
- ``ceiling``: ``THROUGHPUT_NOOP_TASKS`` (6,000) tasks that do nothing, queued first, then
  consumed by N worker processes of the same settings (``_noop_worker.py``): tasks per
  second from the moment they start consuming until the queue is empty and acknowledged.

``ratio`` = attempts per second over no-op tasks per second (target >= 0.7). Traffic stays
on 127.0.0.1; the run ends by itself. Writes ``bench/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from _fleet import create_campaign, fleet, rate_between, start_and_wait
from _noop_worker import NOOP_TASK
from _shared import REDIS, scratch_database

from dialer.calls import counters
from dialer.db.engine import session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt
from dialer.policy.campaign_state import CampaignStatus
from dialer.queue.celery import create_celery
from dialer.settings import Settings

RECIPIENTS = int(os.environ.get("THROUGHPUT_RECIPIENTS", "3000"))
NOOP_TASKS = int(os.environ.get("THROUGHPUT_NOOP_TASKS", "6000"))
MAX_CONCURRENCY = 100
THREADS = 6
RESULTS = Path("bench/results/throughput.json")
#: THROUGHPUT_PROFILE=DIR: the dialer's workers run under py-spy for the first
#: THROUGHPUT_PROFILE_S seconds (default 40), their samples written to DIR as collapsed stacks
#: (where the time goes). py-spy must be on the PATH; it stops its worker when it stops, so a
#: profiling run's figures are not the bench's (nor does its campaign finish).
PROFILE_DIR = os.environ.get("THROUGHPUT_PROFILE")
PROFILE_S = float(os.environ.get("THROUGHPUT_PROFILE_S", "40"))
POLL_S = 0.05
PROFILE = "weights=human=1;setup=fixed:0;ring=fixed:0;amd=fixed:0;talk=fixed:0"
#: The queue the no-op workers listen to until they are told to consume the measured one.
IDLE_QUEUE = "bench-noop-idle"
MEASURED_QUEUE = "bench-noop"


def dialer_rate(url: str, workers: int) -> dict[str, Any]:
    upgrade(url)
    campaign_id, tenant_id = create_campaign(
        url, "throughput", RECIPIENTS, max_concurrency=MAX_CONCURRENCY
    )
    env = {
        "DIALER_PROVIDER": "simulator",
        "DIALER_SIMULATOR_PROFILE": PROFILE,
        "DIALER_CALLS_PER_SECOND": "10000",
        "DIALER_MACHINE_DETECTION": "Enable",
        "DIALER_SCHEDULER_INTERVAL_S": "0.5",
        "DIALER_LOG_LEVEL": "WARNING",
    }
    profile = (Path(PROFILE_DIR), PROFILE_S) if PROFILE_DIR else None
    with fleet(
        url, REDIS, env, workers=workers, worker_threads=THREADS, profile=profile
    ) as running:
        engine = sa.create_engine(url)
        sessions = session_factory(engine)
        cpu_before = running.cpu_s()
        limit_s = 600.0 if profile is None else PROFILE_S
        finish = start_and_wait(
            url, REDIS, tenant_id, campaign_id, limit_s=limit_s, poll_s=POLL_S, watch_slots=False
        )
        status, wall_s = finish.status, finish.wall_s
        cpu_s = running.cpu_s() - cpu_before
        with sessions() as session:
            attempts = session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) or 0
            dialed = list(
                session.scalars(
                    sa.select(CallAttempt.dialed_at).where(CallAttempt.dialed_at.is_not(None))
                )
            )
            values = counters.read(session, [campaign_id])[campaign_id]
            truth = counters.truth(session, campaign_id)
        engine.dispose()
    return {
        "recipients": RECIPIENTS,
        "max_concurrency": MAX_CONCURRENCY,
        "completed": status is CampaignStatus.COMPLETED,
        "attempts": attempts,
        "wall_s": round(wall_s, 2),
        "attempts_per_s": round(attempts / wall_s, 1),
        "steady_attempts_per_s": rate_between(dialed, 0.1, 0.9),
        "fleet_cpu_s": round(cpu_s, 1),
        "counts_match_database": values == truth,
    }


def ceiling_rate(workers: int) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).with_name("_noop_worker.py")),
        f"--concurrency={THREADS}",
        f"--queues={IDLE_QUEUE}",
    ]
    env = {"DIALER_LOG_LEVEL": "WARNING"}
    with fleet(
        "sqlite://", REDIS, env, workers=workers, worker_threads=THREADS, scheduler=False,
        worker_command=command,
    ) as running:  # fmt: skip
        client = redis.Redis.from_url(REDIS)
        celery = create_celery(Settings(database_url="sqlite://", redis_url=REDIS))
        with celery.producer_or_acquire() as producer:
            for _ in range(NOOP_TASKS):
                celery.send_task(NOOP_TASK, queue=MEASURED_QUEUE, producer=producer)
        queued = client.llen(MEASURED_QUEUE)
        cpu_before = running.cpu_s()
        started = time.perf_counter()
        celery.control.add_consumer(MEASURED_QUEUE, reply=True, timeout=5.0)
        while time.perf_counter() < started + 300:
            if client.llen(MEASURED_QUEUE) == 0 and client.hlen("unacked") == 0:
                break
            time.sleep(POLL_S)
        wall_s = time.perf_counter() - started
        cpu_s = running.cpu_s() - cpu_before
        client.close()
    return {
        "tasks": queued,
        "wall_s": round(wall_s, 2),
        "tasks_per_s": round(queued / wall_s, 1),
        "fleet_cpu_s": round(cpu_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("THROUGHPUT_WORKERS", "2"))
    )
    args = parser.parse_args()
    ceiling = ceiling_rate(args.workers)
    with scratch_database() as url:
        dialer = dialer_rate(url, args.workers)
    result = {
        "workers": args.workers,
        "threads_per_worker": THREADS,
        "ratio": round(dialer["attempts_per_s"] / ceiling["tasks_per_s"], 3),
        "target_ratio": 0.7,
        "dialer": dialer,
        "ceiling": ceiling,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
