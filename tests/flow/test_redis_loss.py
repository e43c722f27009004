"""Redis loses its data mid-run: not one call over a limit, and the run goes on by itself."""

from __future__ import annotations

import redis
from sqlalchemy.engine import Engine

from dialer.calls.results import DialResult
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots
from dialer.concurrency.stores import ConcurrencyStores
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from tests.flow.harness import Harness, numbers, profile
from tests.services import delete_prefix

LIMIT = 4


def test_redis_flushed_mid_run_admits_no_call_over_the_limit(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    client, prefix = real_redis
    stores = ConcurrencyStores(
        CallSlots(RedisSemaphore(client, prefix=prefix)), RedisRateLimiter(client)
    )
    h = Harness(engine, stores=stores, sim=profile(human=1.0))  # each call talks 30 s
    campaign_id = h.campaign(numbers(20), max_concurrency=LIMIT)
    h.act(campaign_id, CampaignAction.START)
    peak = 0  # calls up at the provider at once: what the limit is about
    flushed_with = 0
    for step in range(1_000):
        h.step(1.0)
        up = len(h.simulator.live_calls().ids)
        peak = max(peak, up)
        if step == 10:
            flushed_with = up
            delete_prefix(client, prefix)  # the restart without persistence: every holder gone
        if h.status(campaign_id) is CampaignStatus.COMPLETED:
            break
    assert h.status(campaign_id) is CampaignStatus.COMPLETED, h.counts(campaign_id)
    assert flushed_with == LIMIT  # the loss came with every slot in use
    assert peak == LIMIT
    # Once on the fresh store, once after the loss: each time by the first claim that met it.
    assert h.runtime.rebuilder.rebuilds == 2
    assert h.counts(campaign_id) == h.truth(campaign_id)


def test_a_dial_that_meets_the_loss_rebuilds_after_its_transaction_and_goes_on(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    """Claimed and queued, then Redis loses its data before the dial tasks run: the first task
    rebuilds (once its row lock is gone) and comes back; the calls then go out, within the
    limit, their slots taken again under it."""
    client, prefix = real_redis
    stores = ConcurrencyStores(
        CallSlots(RedisSemaphore(client, prefix=prefix)), RedisRateLimiter(client)
    )
    # Paced in real time (Redis TIME), not on the harness clock: a pace that never holds back.
    h = Harness(engine, stores=stores, sim=profile(human=1.0), cps=1_000_000)
    campaign_id = h.campaign(numbers(6), max_concurrency=LIMIT)
    h.act(campaign_id, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    assert len(h.queue.dials) == LIMIT  # queued, their tasks not run yet
    delete_prefix(client, prefix)

    h.run_tasks()
    for _ in range(3):  # a dial the pace held back comes back a moment later
        h.clock.advance(1.0)
        h.run_tasks()
    assert h.dial_results.count(DialResult.SLOTS_LOST) == 1
    assert h.dial_results.count(DialResult.DIALED) == LIMIT
    assert len(h.simulator.live_calls().ids) == LIMIT
    assert h.stores.slots.in_use(campaign_id) == LIMIT
    h.run_until_done(campaign_id)
    assert h.counts(campaign_id) == h.truth(campaign_id)
