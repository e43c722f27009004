"""One scheduler replica, run as its own process by the replica tests.

``python -m tests.dispatching.replica DB_URL REDIS_URL PREFIX LOG [crash]``: ticks until every
campaign is completed (or 90 s pass). Its dial tasks are run inline and end each call at once
as answered, so replicas race on claims, not on calls. Every attempt id it dialed is appended
to LOG. With ``crash`` it kills itself (SIGKILL) between the commit of its first claims and
their hand-off to the queue.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

import redis
import sqlalchemy as sa

from dialer.calls import states
from dialer.calls.dispatch import DispatchConfig
from dialer.clock import utc_now
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots
from dialer.concurrency.stores import ConcurrencyStores
from dialer.db.models import CallAttempt, Campaign
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.campaign_state import CampaignStatus
from dialer.runtime import Refills, build_runtime
from dialer.settings import Settings


class InlineQueue:
    def __init__(self, log_path: str) -> None:
        self.log_path = log_path
        self.runtime: object = None

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        from dialer.runtime import Runtime

        rt = self.runtime
        assert isinstance(rt, Runtime)
        for attempt_id in attempt_ids:
            with rt.sessions() as session, session.begin():
                attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
                claimed = (
                    attempt is not None
                    and attempt.status is AttemptStatus.QUEUED
                    and states.claim(session, attempt_id, attempt.recipient_id, utc_now())
                )
            if not claimed:
                continue
            with open(self.log_path, "a") as log:
                log.write(f"{attempt_id}\n")
            rt.ender.end(attempt_id, Outcome.HUMAN)

    def dispatch(self, campaign_id: str) -> None:
        pass

    def dispatch_started(self, campaign_id: str) -> None:
        pass


def main(db_url: str, redis_url: str, prefix: str, log_path: str, crash: bool) -> None:
    client = redis.Redis.from_url(redis_url)
    semaphore = RedisSemaphore(client, prefix=prefix)
    queue = InlineQueue(log_path)
    runtime = build_runtime(
        # Claims reserve the pace: fast enough never to be what the claims wait for.
        Settings(database_url=db_url, redis_url=redis_url, calls_per_second=10_000),
        queue,
        ConcurrencyStores(CallSlots(semaphore), MemoryRateLimiter()),
        refills=Refills.ELSEWHERE,
        provider=object(),  # type: ignore[arg-type]  # dials never reach a provider here
        dispatch=DispatchConfig(round_size=7, outbox_timeout_s=1.0),
    )
    queue.runtime = runtime
    if crash:
        runtime.dispatcher.after_commit = lambda ids: os.kill(os.getpid(), signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = utc_now()
        runtime.dispatcher.recover_outbox(now)
        runtime.dispatcher.tick(now)
        with runtime.sessions() as session:
            open_ = session.scalar(
                sa.select(sa.func.count())
                .select_from(Campaign)
                .where(Campaign.status != CampaignStatus.COMPLETED)
            )
        if not open_:
            return
        time.sleep(0.01)
    sys.exit("replica: campaigns did not complete in time")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], len(sys.argv) > 5)
