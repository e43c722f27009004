"""Makespan under a calls-per-second limit: is the pace used fully, and do dials bounce?

Run from the repository root (``make bench``). 2,000 recipients, ``max_concurrency`` 50,
every call 2 s (the simulator, as in ``makespan.py``), the account paced at 20 calls per
second. The ideal is max(N / cps, ceil(N / C) x d) = max(100, 80) = 100 s: the pace is the
limit. Real time (the pace is timed by Redis's clock, not the simulator's), about 100 s.

The production topology on this machine: ``PACED_WORKERS`` (default 2) ``dialer worker``
processes, 6 threads each, and one ``dialer scheduler``, on a Redis database of the bench's
own (DIALER_TEST_REDIS_URL's, flushed before and after) and a scratch PostgreSQL database.
Figures: ``ratio`` (wall time, start action to campaign completed, over the ideal; target
<= 1.05) and ``reenqueues_per_dial`` (dial tasks the pace sent back, from the workers' task
log, over the calls placed; target < 0.1), the peak of calls in flight (never above 50), the
starts per second over the steady middle of the run (never above 20 but for a late task's
start: see ``dialer.concurrency.rate.permits``), and whether the counters match the rows.

``PACED_CPS`` sets another pace. Writes ``bench/results/paced.json``; ``--pace-at-dial`` runs
the comparison, every call taking its pace at the dial as before the pace was reserved at the
claim (``bench/results/paced-at-dial.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _fleet import create_campaign, fleet, rate_between, start_and_wait
from _shared import REDIS, scratch_database
from makespan import _timeline

from dialer.calls import counters
from dialer.db.engine import session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt
from dialer.policy.campaign_state import CampaignStatus
from dialer.queue.celery import DIAL_TASK

RECIPIENTS = int(os.environ.get("PACED_RECIPIENTS", "2000"))
MAX_CONCURRENCY = 50
CALL_S = 2.0
#: PACED_CPS: another pace (the default of a Twilio account is 1 call a second; try it with
#: PACED_RECIPIENTS=60). Its figures go to ``paced-cps<N>.json``.
CPS = float(os.environ.get("PACED_CPS", "20"))
RESULTS = Path("bench/results/paced.json")
POLL_S = 0.1
PROFILE = f"weights=human=1;setup=fixed:0;ring=fixed:0;amd=fixed:0.5;talk=fixed:{CALL_S}"


def run(url: str, workers: int, threads: int, *, at_claim: bool = True) -> dict[str, Any]:
    upgrade(url)
    campaign_id, tenant_id = create_campaign(
        url, "paced", RECIPIENTS, max_concurrency=MAX_CONCURRENCY
    )
    env = {
        "DIALER_PROVIDER": "simulator",
        "DIALER_SIMULATOR_PROFILE": PROFILE,
        "DIALER_CALLS_PER_SECOND": str(CPS),
        "DIALER_MACHINE_DETECTION": "Enable",
        "DIALER_SCHEDULER_INTERVAL_S": "0.2",
        "DIALER_PACE_AT_CLAIM": "true" if at_claim else "false",
        # The workers log each task's result (INFO): how many dials the pace sent back.
        "DIALER_LOG_LEVEL": "INFO",
    }
    with fleet(url, REDIS, env, workers=workers, worker_threads=threads) as running:
        engine = sa.create_engine(url)
        sessions = session_factory(engine)
        cpu_before = running.cpu_s()
        finish = start_and_wait(url, REDIS, tenant_id, campaign_id, poll_s=POLL_S)
        status, peak, wall_s = finish.status, finish.peak_in_flight, finish.wall_s
        cpu_s = running.cpu_s() - cpu_before
        with sessions() as session:
            dialed = list(
                session.scalars(
                    sa.select(CallAttempt.dialed_at).where(CallAttempt.dialed_at.is_not(None))
                )
            )
            values = counters.read(session, [campaign_id])[campaign_id]
            truth = counters.truth(session, campaign_id)
            timeline = _timeline(session)
        engine.dispose()
        dial_runs = running.task_results(DIAL_TASK)
    ideal_s = max(RECIPIENTS / CPS, -(-RECIPIENTS // MAX_CONCURRENCY) * CALL_S)
    paced = dial_runs.get("paced", 0)
    return {
        "deployment": f"{workers} Celery workers ({threads} threads each) + 1 scheduler, "
        "Redis, PostgreSQL",
        "recipients": RECIPIENTS,
        "max_concurrency": MAX_CONCURRENCY,
        "call_s": CALL_S,
        "calls_per_second": CPS,
        "pace_at_claim": at_claim,
        "completed": status is CampaignStatus.COMPLETED,
        "calls": len(dialed),
        "peak_in_flight": peak,
        "wall_s": round(wall_s, 2),
        "ideal_s": ideal_s,
        "ratio": round(wall_s / ideal_s, 3),
        "target_ratio": 1.05,
        "dial_task_runs": dict(dial_runs),
        "reenqueues": paced,
        "reenqueues_per_dial": round(paced / max(len(dialed), 1), 4),
        "target_reenqueues_per_dial": 0.1,
        "steady_starts_per_s": rate_between(dialed, 0.1, 0.9),
        "fleet_cpu_s": round(cpu_s, 1),
        "counts_match_database": values == truth,
        # Where a call's time goes (makespan.py's timeline): a claim waits for its reserved
        # start (queue_to_dial), the call and its callbacks (dial_to_end), the refill.
        **timeline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=int(os.environ.get("PACED_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=6, help="threads per worker")
    parser.add_argument(
        "--pace-at-dial",
        action="store_true",
        help="the comparison: claims leave the pace to the dial (DIALER_PACE_AT_CLAIM=false)",
    )
    args = parser.parse_args()
    with scratch_database() as url:
        result = run(url, args.workers, args.threads, at_claim=not args.pace_at_dial)
    out = RESULTS.with_name("paced-at-dial.json") if args.pace_at_dial else RESULTS
    if CPS != 20.0:
        out = out.with_name(f"{out.stem}-cps{CPS:g}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
