"""A distributed dialer on this machine, for the benches that measure one (not a benchmark).

``dialer worker`` processes and one ``dialer scheduler`` on a Redis database of the bench's
own (flushed before and after: it is the bench's alone) and a scratch PostgreSQL database,
the simulator inside the workers. Everything listens on, and talks to, 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis
import sqlalchemy as sa
from _shared import callable_place, own_number

from dialer.api.schemas.recipients import RecipientIn
from dialer.clock import utc_now
from dialer.db.engine import session_factory
from dialer.db.models import Campaign
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.services import campaigns, tenancy

#: How long the workers may take to answer a ping, in seconds.
START_TIMEOUT_S = 60.0
#: A Celery worker's log line for a task that returned (its return value last).
_TASK_DONE = re.compile(r"Task (\S+)\[[^\]]+\] succeeded in [0-9.e-]+s: '?([^'\n]*)'?")


def redis_db_url(url: str, db: int) -> str:
    """``url`` (a Redis URL) with its database number set to ``db``."""
    return re.sub(r"(redis://[^/]+)(/\d+)?$", rf"\1/{db}", url)


def create_campaign(
    url: str, name: str, recipients: int, *, max_concurrency: int
) -> tuple[str, str]:
    """A campaign of ``recipients`` numbers in legal hours, one attempt each; (campaign id,
    tenant id)."""
    engine = sa.create_engine(url)
    sessions = session_factory(engine)
    now = utc_now()
    place = callable_place()
    with sessions() as session, session.begin():
        tenant = tenancy.ensure_tenant(session, name, now=now)
        campaign, _ = campaigns.create(
            session,
            tenant.id,
            {
                "name": name,
                "assistant_id": "a",
                "phone_number_id": own_number(session, tenant.id, "+14155550100"),
                "max_concurrency": max_concurrency,
                "retry_policy": {"max_attempts": 1},
                "speech_settings": {},
            },
            now=now,
            recipients=[RecipientIn(phone_number=place.number(i)) for i in range(recipients)],
        )
        ids = campaign.id, tenant.id
    engine.dispose()
    return ids


@dataclass
class Fleet:
    """The running processes; ``logs`` holds each worker's output."""

    redis_url: str
    workers: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def task_results(self, task: str) -> Counter[str]:
        """How many runs of ``task`` returned what, read from the workers' logs (they log at
        INFO)."""
        counts: Counter[str] = Counter()
        for log in self.logs:
            log.flush()
            log.seek(0)
            for match in _TASK_DONE.finditer(log.read().decode(errors="replace")):
                if match.group(1) == task:
                    counts[match.group(2)] += 1
        return counts

    def cpu_s(self) -> float:
        """CPU seconds the processes (and their children) used so far (Linux's /proc)."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(FileNotFoundError):
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


@contextlib.contextmanager
def fleet(
    database_url: str,
    redis_url: str,
    env: dict[str, str],
    *,
    workers: int,
    worker_threads: int,
    scheduler: bool = True,
    worker_command: Sequence[str] | None = None,
    profile: tuple[Path, float] | None = None,
) -> Iterator[Fleet]:
    """``workers`` worker processes (``worker_command``, default ``dialer worker``) and a
    scheduler, up (the workers answer pings) for the block, stopped (SIGTERM, then SIGKILL)
    after it; the Redis database is flushed before and after.

    ``profile`` (a directory, seconds): each worker runs under ``py-spy record`` for that long
    from its start, its samples written to ``worker-N.txt`` there (collapsed stacks)."""
    from dialer.queue.celery import create_celery
    from dialer.settings import Settings

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    full_env = {**os.environ, "DIALER_DATABASE_URL": database_url, "DIALER_REDIS_URL": redis_url}
    full_env.update(env)
    dialer = [sys.executable, "-m", "dialer"]
    command = list(worker_command or [*dialer, "worker", f"--concurrency={worker_threads}"])
    running = Fleet(redis_url, workers)
    files = contextlib.ExitStack()
    try:
        for n in range(workers):
            log = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by files)
            running.logs.append(log)
            spy: list[str] = []
            if profile is not None:
                out = profile[0] / f"worker-{n}.txt"
                spy = ["py-spy", "record", "--format", "raw", "-d", str(int(profile[1]))]
                spy = [*spy, "-o", str(out), "--"]
            running.procs.append(
                subprocess.Popen(
                    [*spy, *command],
                    env=full_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        if scheduler:
            running.procs.append(
                subprocess.Popen([*dialer, "scheduler"], env=full_env, start_new_session=True)
            )
        celery = create_celery(Settings(database_url=database_url, redis_url=redis_url))
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(celery.control.ping(timeout=1.0)) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not come up:\n{_tail(running.logs)}")
        yield running
    finally:
        for proc in running.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in running.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        client.flushdb()
        client.close()
        files.close()


def _tail(logs: list[IO[bytes]]) -> str:
    out = []
    for log in logs:
        log.seek(0)
        out.append(log.read().decode(errors="replace")[-2000:])
    return "\n".join(out)


@dataclass(frozen=True)
class Finish:
    """How a started campaign ended: its status, the peak of its slots in use (when watched),
    and the seconds from the start action."""

    status: CampaignStatus
    peak_in_flight: int
    wall_s: float


def start_and_wait(
    database_url: str,
    redis_url: str,
    tenant_id: str,
    campaign_id: str,
    *,
    limit_s: float = 600.0,
    poll_s: float = 0.05,
    watch_slots: bool = True,
) -> Finish:
    """Start the campaign as the API starts it (the commit, then a dispatch request to the
    workers) and poll it until it completes or ``limit_s`` passes, reading its slots in use
    at each poll when ``watch_slots``."""
    from dialer.concurrency.stores import ConcurrencyStores
    from dialer.queue.celery import CeleryQueue, create_celery
    from dialer.settings import Settings

    client = redis.Redis.from_url(redis_url)
    slots = ConcurrencyStores.on_redis(client).slots
    engine = sa.create_engine(database_url)
    sessions = session_factory(engine)
    celery = create_celery(Settings(database_url=database_url, redis_url=redis_url))
    try:
        started = time.perf_counter()
        with sessions() as session, session.begin():
            campaigns.act(session, tenant_id, campaign_id, CampaignAction.START, now=utc_now())
        CeleryQueue(celery, client).dispatch(campaign_id)
        status, peak = CampaignStatus.RUNNING, 0
        while time.perf_counter() < started + limit_s and status is not CampaignStatus.COMPLETED:
            if watch_slots:
                peak = max(peak, slots.in_use(campaign_id))
            time.sleep(poll_s)
            with sessions() as session:
                status = session.get_one(Campaign, campaign_id).status
        return Finish(status, peak, time.perf_counter() - started)
    finally:
        celery.close()
        engine.dispose()
        client.close()


def rate_between(times: list[Any], low: float, high: float) -> float | None:
    """Events per second between the ``low`` and ``high`` fractions of sorted ``times``
    (datetimes): the steady rate, without the ramp up and the tail."""
    if len(times) < 10:
        return None
    times = sorted(times)
    first, last = int(len(times) * low), int(len(times) * high) - 1
    span_s = (times[last] - times[first]).total_seconds()
    return round((last - first) / span_s, 1) if span_s > 0 else None
