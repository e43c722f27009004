"""Scheduler tick cost against campaign size: 10,000 vs 1,000,000 recipients on PostgreSQL.

Run from the repository root (``make bench``). Uses DIALER_TEST_POSTGRES_URL (else the local
server) to create a scratch database per size, and DIALER_TEST_REDIS_URL (else the local
server) for the semaphore. Each size runs in its own process so its peak RSS is its own.

A running campaign with ``max_concurrency`` 50: every measured tick dispatches a full 50
(the calls of the previous tick are ended between ticks, outside the measure). Reported per
size: median and p90 tick seconds, and the process's peak RSS; then ``tick_ratio`` =
median(1M) / median(10k) (target <= 1.5). Writes ``bench/results/scheduler.json``.

The compliance checks are on, as a tenant would run them: the default frequency caps (3
attempts a day, 7 a week, per number across the tenant's campaigns), with a contact history
for a share of the numbers (every 10th called 3 times in the last hours: deferred by the cap;
every 5th once: read, not capped), and ``require_consent`` with a consent record for every
number. ``--size N`` measures one size; ``--help`` prints this.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
import sqlalchemy as sa
from _shared import REDIS, callable_place, own_number, scratch_database
from sqlalchemy.orm import Session

from dialer.calls import counters
from dialer.calls.dispatch import DispatchConfig
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots
from dialer.concurrency.stores import ConcurrencyStores
from dialer.db.engine import make_engine
from dialer.db.migrate import upgrade
from dialer.policy.attempt_state import Outcome
from dialer.policy.campaign_state import CampaignAction
from dialer.runtime import Refills, build_runtime
from dialer.services import campaigns, tenancy
from dialer.settings import Settings

SIZES = (10_000, 1_000_000)
MAX_CONCURRENCY = 50
TICKS = 30
RESULTS = Path("bench/results/scheduler.json")


class _Queue:
    def dial(self, attempt_ids: object, countdown_s: float = 0.0) -> None:
        pass

    def dispatch(self, campaign_id: str) -> None:
        pass

    def dispatch_started(self, campaign_id: str) -> None:
        pass


def _fill(url: str, size: int) -> str:
    """A running campaign of ``size`` recipients, inserted server-side."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    place = callable_place()
    from dialer.db.engine import session_factory

    with session_factory(engine)() as session, session.begin():
        tenant = tenancy.ensure_tenant(session, "bench", now=now)
        campaign, _ = campaigns.create(
            session,
            tenant.id,
            {
                "name": f"bench {size}",
                "assistant_id": "a",
                "phone_number_id": own_number(session, tenant.id, "+14155550100"),
                "max_concurrency": MAX_CONCURRENCY,
                "retry_policy": {"max_attempts": 1},
                "speech_settings": {},
                "require_consent": True,
            },
            now=now,
        )
        campaign_id = campaign.id
        session.execute(
            sa.text(
                "INSERT INTO recipients (campaign_id, phone_number, metadata, assistant_overrides,"
                " time_zone, status, attempt_count, run_attempts, next_attempt_at, created_at,"
                " updated_at) SELECT :cid, :prefix || (:first + i)::text, '{}'::jsonb,"
                " '{}'::jsonb, NULL, 'pending', 0, 0, :now, :now, :now"
                " FROM generate_series(1, :n) AS i"
            ),
            {
                "cid": campaign_id,
                "prefix": place.prefix,
                "first": place.first,
                "now": now,
                "n": size,
            },
        )
        _compliance(session, tenant.id, size, now, place.prefix, place.first)
        counters.recount(session, campaign_id)
        campaigns.act(session, tenant.id, campaign_id, CampaignAction.START, now=now)
    # Settle the fresh table (visibility map, statistics) so autovacuum does not run
    # inside the measure, as it would not on a campaign that has existed for a while.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE recipients, consent_records, number_contacts"))
    engine.dispose()
    return campaign_id


def _compliance(
    session: Session, tenant_id: str, size: int, now: datetime, prefix: str, first: int
) -> None:
    """A consent record for every number of the campaign (``prefix`` followed by ``first + i``,
    as the recipients are inserted); a contact history for a share of them (see the module
    docstring). Attempt ids far above any the bench creates."""
    number = f"'{prefix}' || ({int(first)} + i)::text"
    session.execute(
        sa.text(
            "INSERT INTO consent_records (tenant_id, phone_number, basis, captured_at, source,"
            f" created_at) SELECT :tid, {number}, 'express_written', :now - interval '30 days',"
            " 'bench', :now FROM generate_series(1, :n) AS i"
        ),
        {"tid": tenant_id, "now": now, "n": size},
    )
    session.execute(
        sa.text(
            "INSERT INTO number_contacts (attempt_id, tenant_id, phone_number, at)"
            f" SELECT 1000000000000 + i * 4 + k, :tid, {number}, :now - k * interval '1 hour'"
            " FROM generate_series(1, :n) AS i, generate_series(1, 3) AS k"
            " WHERE i % 10 = 0 OR (i % 5 = 1 AND k = 1)"
        ),
        {"tid": tenant_id, "now": now, "n": size},
    )


def measure(size: int) -> dict[str, object]:
    """Runs in a child process: fill, then time ticks."""
    with scratch_database() as url:
        upgrade(url)
        started = time.perf_counter()
        _fill(url, size)
        fill_s = time.perf_counter() - started
        client = redis.Redis.from_url(REDIS)
        semaphore = RedisSemaphore(client, prefix=f"bench:{uuid.uuid4().hex}:")
        runtime = build_runtime(
            # The pace left to the dial: a claim reserving starts at the account's default of
            # one call a second would claim two calls a tick, not the full 50 measured here.
            Settings(database_url=url, redis_url=REDIS, pace_at_claim=False),
            _Queue(),
            ConcurrencyStores(CallSlots(semaphore), MemoryRateLimiter()),
            refills=Refills.ELSEWHERE,
            provider=object(),  # type: ignore[arg-type]
            dispatch=DispatchConfig(round_size=MAX_CONCURRENCY),
        )
        times: list[float] = []
        for _ in range(TICKS + 2):
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            result = runtime.dispatcher.tick(now)
            elapsed = time.perf_counter() - t0
            assert len(result.dispatched) == MAX_CONCURRENCY, (
                len(result.dispatched),
                result.screened.reasons,
            )
            times.append(elapsed)
            for attempt_id in result.dispatched:  # end the calls, outside the measure
                assert runtime.ender.end(attempt_id, Outcome.HUMAN) is not None
        times = times[2:]  # warm-up: connections, statement caches
        runtime.engine.dispose()
        times.sort()
        return {
            "recipients": size,
            "fill_s": round(fill_s, 1),
            "ticks": len(times),
            "dispatched_per_tick": MAX_CONCURRENCY,
            "tick_median_s": round(statistics.median(times), 4),
            "tick_p90_s": round(times[int(len(times) * 0.9) - 1], 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }


def main() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--size":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    runs = []
    for size in SIZES:
        out = subprocess.run(
            [sys.executable, __file__, "--size", str(size)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    small, large = runs
    result = {
        "database": "postgresql",
        "max_concurrency": MAX_CONCURRENCY,
        "runs": runs,
        "tick_ratio": round(large["tick_median_s"] / small["tick_median_s"], 3),
        "rss_ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "target_tick_ratio": 1.5,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
