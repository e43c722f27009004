"""Makespan of a simulated campaign: how close the dialer keeps every line busy.

Run from the repository root (``make bench``). 2,000 recipients, ``max_concurrency`` 50,
every call exactly 2 s from dial to hang-up (simulator, human answers), a pace limit far
above need (the simulator's own account). The ideal is ceil(2000 / 50) x 2 s = 80 s; the
ratio of the measured wall time (start action to campaign completed) to it is the figure
(target <= 1.05). Database: a scratch PostgreSQL database (DIALER_TEST_POSTGRES_URL, else
the local server). The campaign starts as the API starts it (commit, then a dispatch request
to the workers), and a finished call's slot is refilled by the worker thread that ingested
its end, not by the next tick. Two deployments are measured:

- ``distributed`` (the figure): the production topology on this machine, two
  ``dialer worker`` processes (one per core; Celery's pool of threads, the default, with 6
  threads each: MAKESPAN_WORKERS, MAKESPAN_POOL and MAKESPAN_WORKER_CONCURRENCY change them)
  and one ``dialer scheduler`` on real Redis (DIALER_TEST_REDIS_URL's server, database 13,
  flushed), the simulator inside the workers;
- ``embedded``: everything in this one process (in-memory semaphore, thread pools), which
  Python's GIL holds to one core.

Each also says where the time goes (see ``_timeline``): the mean and median delays from a
claim to its dial, from a dial to the call's last callback, and from a call's end to the next
claim, and how long the first wave (the first ``max_concurrency`` dials) took. The ratio moves
by about 0.01 between runs, and by 0.02 to 0.03 between hours of this shared machine.

Writes ``bench/results/makespan.json``.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _fleet import create_campaign, fleet, redis_db_url, start_and_wait
from _shared import REDIS, scratch_database
from sqlalchemy.orm import Session

from dialer.calls import counters
from dialer.calls.dispatch import DispatchConfig
from dialer.clock import utc_now
from dialer.db.engine import session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt, CallEvent, Campaign
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.runtime import embedded_runtime
from dialer.services import campaigns
from dialer.settings import Settings
from scheduler.loop import SchedulerLoop

RECIPIENTS = int(os.environ.get("MAKESPAN_RECIPIENTS", "2000"))
MAX_CONCURRENCY = 50
CALL_S = 2.0
RESULTS = Path("bench/results/makespan.json")
#: How often the bench looks at the campaign (completed?) and the slots in use (peak). The
#: wall time is known to this much (0.1 s of 80 s); polling faster would take CPU from the
#: dialer it measures, on a machine whose cores the dialer keeps busy.
POLL_S = 0.1
#: The workers' Celery pool (``dialer worker --pool``); unset: the default.
POOL = os.environ.get("MAKESPAN_POOL")
WORKER_THREADS = os.environ.get("MAKESPAN_WORKER_CONCURRENCY", "6")
#: How many ``dialer worker`` processes.
WORKERS = int(os.environ.get("MAKESPAN_WORKERS", "2"))


def main() -> None:
    modes = os.environ.get("MAKESPAN_MODES", "distributed,embedded").split(",")
    results: dict[str, Any] = {}
    for mode in modes:
        with scratch_database() as url:
            results[mode] = run_distributed(url) if mode == "distributed" else run(url)
    first = results[modes[0]]
    result = {"ratio": first["ratio"], "target_ratio": 1.05, "figure": modes[0], **results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


PROFILE = f"weights=human=1;setup=fixed:0;ring=fixed:0;amd=fixed:0.5;talk=fixed:{CALL_S}"


def run_distributed(url: str) -> dict[str, Any]:
    # A Redis database of its own, flushed before and after.
    redis_url = redis_db_url(REDIS, 13)
    upgrade(url)
    env = {
        "DIALER_PROVIDER": "simulator",
        "DIALER_SIMULATOR_PROFILE": PROFILE,
        "DIALER_CALLS_PER_SECOND": "1000",
        "DIALER_MACHINE_DETECTION": "Enable",
        "DIALER_SCHEDULER_INTERVAL_S": "0.2",
        "DIALER_LOG_LEVEL": "WARNING",
    }
    campaign_id, tenant_id = create_campaign(
        url, "makespan", RECIPIENTS, max_concurrency=MAX_CONCURRENCY
    )
    worker = [sys.executable, "-m", "dialer", "worker", "--concurrency", WORKER_THREADS]
    worker += ["--pool", POOL] if POOL else []
    with fleet(
        url, redis_url, env, workers=WORKERS, worker_threads=int(WORKER_THREADS),
        worker_command=worker,
    ):  # fmt: skip
        finish = start_and_wait(url, redis_url, tenant_id, campaign_id, poll_s=POLL_S)
        status, peak, wall_s = finish.status, finish.peak_in_flight, finish.wall_s
        engine = sa.create_engine(url)
        with session_factory(engine)() as session:
            calls = session.scalar(sa.select(sa.func.count()).select_from(CallAttempt))
            values = counters.read(session, [campaign_id])[campaign_id]
            truth = counters.truth(session, campaign_id)
            timeline = _timeline(session)
        engine.dispose()
    ideal_s = math.ceil(RECIPIENTS / MAX_CONCURRENCY) * CALL_S
    return {
        "deployment": f"{WORKERS} Celery workers ({POOL or 'default pool'}, {WORKER_THREADS} "
        "each) + 1 scheduler, "
        "Redis, PostgreSQL",
        "recipients": RECIPIENTS,
        "max_concurrency": MAX_CONCURRENCY,
        "call_s": CALL_S,
        "completed": status is CampaignStatus.COMPLETED,
        "calls": calls,
        "peak_in_flight": peak,
        "wall_s": round(wall_s, 2),
        "ideal_s": ideal_s,
        "ratio": round(wall_s / ideal_s, 3),
        "counts_match_database": values == truth,
        **timeline,
    }


def _timeline(session: Session) -> dict[str, float | None]:
    """Where a call's time goes, from the attempts' timestamps (median seconds).

    ``queue_to_dial``: claimed by a dispatch until its worker claims it to dial (0 for a call
    a refill claimed straight into dialing: most of them);
    ``dial_to_end``: dialed until its last callback was ingested (the call, 2 s, plus the way
    from the claim to the provider and the callbacks' way);
    ``end_to_next_queue``: that last ingest until the next attempt was claimed, over every end
    (the refill delay: the dispatch for a freed slot). The provider's own end time has whole
    seconds only, so the ingest time is used.
    """
    last_callback = (
        sa.select(CallEvent.attempt_id, sa.func.max(CallEvent.received_at).label("at"))
        .group_by(CallEvent.attempt_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(CallAttempt.queued_at, CallAttempt.dialed_at, last_callback.c.at).outerjoin(
            last_callback, last_callback.c.attempt_id == CallAttempt.id
        )
    ).all()
    waits = [(d - q).total_seconds() for q, d, _ in rows if d is not None]
    lengths = [(e - d).total_seconds() for _, d, e in rows if d and e]
    queued = sorted(q for q, _, _ in rows)
    refills = []
    for _, _, ended in rows:
        at = bisect.bisect_right(queued, ended) if ended else len(queued)
        if at < len(queued):
            refills.append((queued[at] - ended).total_seconds())

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 3) if values else None

    dialed = sorted(d for _, d, _ in rows if d is not None)
    ends = [e for _, _, e in rows if e is not None]
    first = min(queued) if queued else None
    return {
        "median_queue_to_dial_s": median(waits),
        "mean_queue_to_dial_s": round(statistics.fmean(waits), 3) if waits else None,
        "median_dial_to_end_s": median(lengths),
        "mean_dial_to_end_s": round(statistics.fmean(lengths), 3) if lengths else None,
        "median_end_to_next_queue_s": median(refills),
        "mean_end_to_next_queue_s": round(statistics.fmean(refills), 3) if refills else None,
        # The first wave: the first claim until the first max_concurrency calls are dialed.
        "first_wave_s": (
            round((dialed[MAX_CONCURRENCY - 1] - first).total_seconds(), 3)
            if first and len(dialed) >= MAX_CONCURRENCY
            else None
        ),
        "first_claim_to_last_end_s": (
            round((max(ends) - first).total_seconds(), 3) if first and ends else None
        ),
    }


def run(url: str) -> dict[str, Any]:
    upgrade(url)
    settings = Settings(
        database_url=url,
        redis_url=None,
        calls_per_second=1000,
        machine_detection="Enable",
        simulator_profile=PROFILE,
        simulator_seed=1,
    )
    # As ``dialer scheduler`` runs in embedded mode, with more task threads.
    runtime = embedded_runtime(
        settings, dispatch=DispatchConfig(round_size=MAX_CONCURRENCY), threads=12
    )
    slots = runtime.stores.slots
    sessions = session_factory(runtime.engine)
    campaign_id, tenant_id = create_campaign(
        url, "makespan", RECIPIENTS, max_concurrency=MAX_CONCURRENCY
    )
    loop = SchedulerLoop(runtime, interval_s=0.2, reconcile_interval_s=30.0)
    stop = threading.Event()
    peak = 0
    with sessions() as session, session.begin():
        campaigns.act(session, tenant_id, campaign_id, CampaignAction.START, now=utc_now())
    started = time.perf_counter()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    status = CampaignStatus.RUNNING
    deadline = started + 600
    while time.perf_counter() < deadline and status is not CampaignStatus.COMPLETED:
        peak = max(peak, slots.in_use(campaign_id))
        with sessions() as session:
            status = session.get_one(Campaign, campaign_id).status
        time.sleep(POLL_S)
    wall_s = time.perf_counter() - started
    stop.set()
    thread.join(timeout=10)
    with sessions() as session:
        calls = session.scalar(sa.select(sa.func.count()).select_from(CallAttempt))
        timeline = _timeline(session)
        values = counters.read(session, [campaign_id])[campaign_id]
        truth = counters.truth(session, campaign_id)
    runtime.close()
    ideal_s = math.ceil(RECIPIENTS / MAX_CONCURRENCY) * CALL_S
    return {
        "database": "postgresql",
        "recipients": RECIPIENTS,
        "max_concurrency": MAX_CONCURRENCY,
        "call_s": CALL_S,
        "completed": status is CampaignStatus.COMPLETED,
        "calls": calls,
        "peak_in_flight": peak,
        "wall_s": round(wall_s, 2),
        "ideal_s": ideal_s,
        "ratio": round(wall_s / ideal_s, 3),
        "target_ratio": 1.05,
        "counts_match_database": values == truth,
        **timeline,
    }


if __name__ == "__main__":
    sys.exit(main())
