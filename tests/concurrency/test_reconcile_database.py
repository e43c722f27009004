"""Rebuilding the semaphore from the database after Redis lost everything.

Runs on the real Redis server and on each database the ``engine`` fixture provides.
"""

from __future__ import annotations

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.concurrency.keys import SlotScope, holder_id, layered_limits
from dialer.concurrency.semaphore.base import reconcile_from
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.truth import live_holders
from dialer.db.models import CallAttempt, Campaign, CampaignRun
from dialer.policy.attempt_state import AttemptStatus, Outcome
from tests.concurrency.conftest import LONG_LEASE_S, delete_prefix
from tests.db import factories

CALLER = "+14155550100"


def attempt(
    session: Session,
    run: CampaignRun,
    to_number: str,
    status: AttemptStatus,
    from_number: str | None = CALLER,
) -> CallAttempt:
    """An attempt of ``run``'s campaign to a new recipient, in ``status``."""
    campaign = session.get_one(Campaign, run.campaign_id)
    person = factories.recipient(session, campaign, to_number)
    row = CallAttempt(
        recipient_id=person.id,
        campaign_id=run.campaign_id,
        run_id=run.id,
        attempt_number=1,
        from_number=from_number,
        to_number=person.phone_number,
        status=status,
        outcome=Outcome.HUMAN if status is AttemptStatus.ENDED else None,
    )
    session.add(row)
    session.flush()
    return row


def scope(campaign: Campaign, row: CallAttempt) -> SlotScope:
    return SlotScope(campaign.id, campaign.tenant_id, row.from_number)


def test_after_redis_loses_everything_reconcile_restores_the_databases_calls(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    client, prefix = real_redis
    semaphore = RedisSemaphore(client, prefix=prefix)
    with Session(engine) as session:
        owner = factories.tenant(session)
        first = factories.campaign(session, owner, max_concurrency=3)
        second = factories.campaign(session, owner, name="Other")
        run1, run2 = factories.run(session, first), factories.run(session, second)
        queued = attempt(session, run1, "+14155550001", AttemptStatus.QUEUED)
        dialing = attempt(session, run1, "+14155550002", AttemptStatus.DIALING, None)
        ended = attempt(session, run1, "+14155550003", AttemptStatus.ENDED)
        talking = attempt(session, run2, "+14155550004", AttemptStatus.IN_PROGRESS)
        session.commit()
        live = [(first, queued), (first, dialing), (second, talking)]
        expected: dict[str, set[str]] = {}
        for camp, row in live:
            for key in scope(camp, row).keys(prefix):
                expected.setdefault(key, set()).add(holder_id(row.id))
        assert live_holders(session, prefix=prefix) == expected

        # Redis before the restart: the live calls, one ended but never released, one stranger.
        for camp, row in [*live, (first, ended)]:
            limits = layered_limits(scope(camp, row), 5, None, None, prefix=prefix)
            assert semaphore.acquire(holder_id(row.id), limits, LONG_LEASE_S)
        stranger = layered_limits(SlotScope(first.id, owner.id), 5, None, None, prefix=prefix)
        semaphore.acquire("999999", stranger, LONG_LEASE_S)

        delete_prefix(client, prefix)  # the restart: data and scripts gone
        client.script_flush()
        assert semaphore.snapshot() == {}

        result = reconcile_from(
            semaphore, lambda: live_holders(session, prefix=prefix), LONG_LEASE_S
        )
        assert result.added == {key: frozenset(ids) for key, ids in expected.items()}
        assert semaphore.snapshot() == expected
        # The campaign holds 2 of its 3 slots again: one more call, not a flood of them.
        new_scope = SlotScope(first.id, owner.id)
        limits = layered_limits(new_scope, first.max_concurrency, None, None, prefix=prefix)
        assert semaphore.acquire("new-1", limits, LONG_LEASE_S)
        assert not semaphore.acquire("new-2", limits, LONG_LEASE_S)


def test_reconcile_drops_what_the_database_says_has_ended(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    client, prefix = real_redis
    semaphore = RedisSemaphore(client, prefix=prefix)
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        run = factories.run(session, camp)
        row = attempt(session, run, "+14155550001", AttemptStatus.RINGING)
        session.commit()
        keys = scope(camp, row).keys(prefix)
        limits = layered_limits(scope(camp, row), 5, None, None, prefix=prefix)
        semaphore.acquire(holder_id(row.id), limits, LONG_LEASE_S)
        semaphore.acquire("999999", limits, LONG_LEASE_S)  # a holder with no attempt at all

        def read() -> dict[str, set[str]]:
            return live_holders(session, prefix=prefix)

        result = reconcile_from(semaphore, read, LONG_LEASE_S)
        assert result.removed == {key: frozenset({"999999"}) for key in keys}
        assert not result.added

        row.status, row.outcome = AttemptStatus.ENDED, Outcome.BUSY
        session.commit()
        result = reconcile_from(semaphore, read, LONG_LEASE_S)
        assert result.removed == {key: frozenset({holder_id(row.id)}) for key in keys}
        assert semaphore.snapshot() == {}
