"""Reconciling the semaphore with the database: after Redis lost everything, and while the
dispatcher's rows are not committed yet.

Runs on the real Redis server and on each database the ``engine`` fixture provides.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import pytest
import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.concurrency import truth as truth_module
from dialer.concurrency.keys import SlotScope, holder_id, layered_limits
from dialer.concurrency.semaphore.base import Reaped
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots
from dialer.concurrency.truth import SlotTruth, ended_attempts, live_attempts, read_truth
from dialer.db.models import CallAttempt, Campaign, CampaignRun
from dialer.errors import SlotsLost
from dialer.policy.attempt_state import AttemptStatus, Outcome
from tests.concurrency.conftest import LONG_LEASE_S, redis_time, wait_for_redis_time
from tests.concurrency.support import built
from tests.db import factories
from tests.services import delete_prefix

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


def test_after_redis_loses_everything_it_admits_nothing_until_rebuilt_from_the_database(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    client, prefix = real_redis
    semaphore = built(RedisSemaphore(client, prefix=prefix))
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
        # The calls placed are restored; the queued attempt's reservation is not (its dial
        # task takes a slot again, checked): see test_a_queued_attempt_is_not_forced_back.
        live = [(first, dialing), (second, talking)]
        expected: dict[str, set[str]] = {}
        for camp, row in live:
            for key in scope(camp, row).keys(prefix):
                expected.setdefault(key, set()).add(holder_id(row.id))
        assert live_attempts(session) == {row.id: scope(camp, row) for camp, row in live}

        # Redis before the restart: the live calls, one ended but never released, one stranger.
        for camp, row in [*live, (first, queued), (first, ended)]:
            limits = layered_limits(scope(camp, row), 5, None, None, prefix=prefix)
            assert semaphore.acquire(holder_id(row.id), limits, LONG_LEASE_S)
        stranger = layered_limits(SlotScope(first.id, owner.id), 5, None, None, prefix=prefix)
        semaphore.acquire("999999", stranger, LONG_LEASE_S)

        delete_prefix(client, prefix)  # the restart: data and scripts gone
        client.script_flush()
        assert semaphore.snapshot() == {}

        # Forgetting the calls in flight, it admits nothing: not a call over the limit.
        new_scope = SlotScope(first.id, owner.id)
        limits = layered_limits(new_scope, first.max_concurrency, None, None, prefix=prefix)
        with pytest.raises(SlotsLost):
            semaphore.acquire("new-1", limits, LONG_LEASE_S)
        with pytest.raises(SlotsLost):
            semaphore.acquire_many([("new-1", limits)], LONG_LEASE_S)
        with pytest.raises(SlotsLost):
            semaphore.renew(holder_id(dialing.id), scope(first, dialing).keys(prefix), 1.0)
        # A periodic reconcile restores the calls but does not make the store admit again...
        slots = CallSlots(semaphore)
        slots.reconcile(lambda ids: read_truth(session, ids), LONG_LEASE_S)
        with pytest.raises(SlotsLost):
            semaphore.acquire("new-1", limits, LONG_LEASE_S)
        # ...a rebuild does.
        result = slots.rebuild(lambda ids: read_truth(session, ids, after_dials=True), LONG_LEASE_S)
        assert result.added == {}  # the reconcile restored them already
        assert semaphore.snapshot() == expected
        # The campaign holds 1 of its 3 slots again (its call placed): two more, not a flood.
        assert semaphore.acquire("new-1", limits, LONG_LEASE_S)
        assert semaphore.acquire("new-2", limits, LONG_LEASE_S)
        # The queued attempt's dial task finds its reservation gone and asks again, checked:
        # refused, so the campaign never has more than 3 calls.
        queued_limits = layered_limits(
            scope(first, queued), first.max_concurrency, None, None, prefix=prefix
        )
        keys = scope(first, queued).keys(prefix)
        assert not semaphore.renew(holder_id(queued.id), keys, LONG_LEASE_S)
        assert not semaphore.acquire(holder_id(queued.id), queued_limits, LONG_LEASE_S)
        assert semaphore.count(new_scope.campaign_key(prefix)) == first.max_concurrency


def test_reconcile_drops_what_the_database_says_has_ended(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    client, prefix = real_redis
    semaphore = built(RedisSemaphore(client, prefix=prefix))
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

        def read(observed: AbstractSet[int]) -> SlotTruth:
            return read_truth(session, observed)

        # The database does not know 999999: it may be a row not committed yet. Kept.
        slots = CallSlots(semaphore)
        result = slots.reconcile(read, LONG_LEASE_S)
        assert not result.changed

        row.status, row.outcome = AttemptStatus.ENDED, Outcome.BUSY
        session.commit()
        result = slots.reconcile(read, LONG_LEASE_S)
        assert result.removed == {key: frozenset({holder_id(row.id)}) for key in keys}
        assert not result.added
        assert semaphore.snapshot() == {key: {"999999"} for key in keys}


def test_reconcile_removes_ended_keeps_unknown_and_restores_live_holders(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    """Only a row saying ``ended`` frees a slot; a holder with no row waits for its lease."""
    client, prefix = real_redis
    semaphore = built(RedisSemaphore(client, prefix=prefix))
    queue_lease_s = 0.3
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner, max_concurrency=3)
        run = factories.run(session, camp)
        ended = attempt(session, run, "+14155550001", AttemptStatus.ENDED)
        held = attempt(session, run, "+14155550002", AttemptStatus.QUEUED)
        missing = attempt(session, run, "+14155550003", AttemptStatus.IN_PROGRESS)
        session.commit()
        keys = scope(camp, held).keys(prefix)
        limits = layered_limits(scope(camp, held), 3, None, None, prefix=prefix)
        # Ended but never released (its worker died before the release), and a live call.
        assert semaphore.acquire(holder_id(ended.id), limits, LONG_LEASE_S)
        assert semaphore.acquire(holder_id(held.id), limits, LONG_LEASE_S)
        run_id = run.id
        session.commit()  # SQLite: no open transaction, so the other session may write
        # A dispatcher admitted an attempt, then crashed before its row committed.
        with Session(engine) as crashed:
            crashed_run = crashed.get_one(CampaignRun, run_id)
            never = attempt(crashed, crashed_run, "+14155550004", AttemptStatus.QUEUED)
            never_id = never.id
            unknown = holder_id(never_id)
            assert semaphore.acquire(unknown, limits, queue_lease_s)
            crashed.rollback()
        assert session.get(CallAttempt, never_id) is None

        result = CallSlots(semaphore).reconcile(lambda ids: read_truth(session, ids), LONG_LEASE_S)
        assert result.removed == {key: frozenset({holder_id(ended.id)}) for key in keys}
        assert result.added == {key: frozenset({holder_id(missing.id)}) for key in keys}
        live = {holder_id(held.id), holder_id(missing.id)}
        assert semaphore.snapshot() == {key: {*live, unknown} for key in keys}

        # The unknown holder's short lease is its bound: it lapses and the reap reports it.
        wait_for_redis_time(client, redis_time(client) + queue_lease_s)
        assert semaphore.snapshot() == {key: live for key in keys}
        assert sorted(semaphore.reap()) == sorted(Reaped(key, unknown) for key in keys)
        assert semaphore.reaped_total == len(keys)


def test_a_queued_attempt_is_not_forced_back(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    """A queued attempt whose reservation lapsed, its slot since taken by another call, is not
    re-added by a reconcile: that would put the campaign above its limit, unchecked."""
    client, prefix = real_redis
    semaphore = built(RedisSemaphore(client, prefix=prefix))
    queue_lease_s = 0.3
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner, max_concurrency=1)
        run = factories.run(session, camp)
        late = attempt(session, run, "+14155550001", AttemptStatus.QUEUED)
        other = attempt(session, run, "+14155550002", AttemptStatus.DIALING)
        session.commit()
        limits = layered_limits(scope(camp, late), 1, None, None, prefix=prefix)
        key = scope(camp, late).campaign_key(prefix)
        assert semaphore.acquire(holder_id(late.id), limits, queue_lease_s)
        # No worker picked the task up in time: the reservation lapses, another call takes it.
        wait_for_redis_time(client, redis_time(client) + queue_lease_s)
        assert semaphore.acquire(holder_id(other.id), limits, LONG_LEASE_S)

        CallSlots(semaphore).reconcile(lambda ids: read_truth(session, ids), LONG_LEASE_S)
        assert semaphore.count(key) == 1
        assert holder_id(late.id) not in semaphore.snapshot()[key]
        # Its dial task then asks again, checked, and waits for a slot.
        assert not semaphore.renew(holder_id(late.id), scope(camp, late).keys(prefix), 60.0)
        assert not semaphore.acquire(holder_id(late.id), limits, LONG_LEASE_S)


def test_an_attempt_admitted_before_its_row_commits_keeps_its_slot(
    engine: Engine, real_redis: tuple[redis.Redis, str]
) -> None:
    """The dispatcher's race, on a real database: the count never goes above the limit.

    The dispatcher takes the slot, then commits the row. A reconcile that snapshots Redis and
    reads the database in between cannot see the row; removing the holder would let another
    attempt take the slot of a call that goes ahead anyway.
    """
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite transactions begin IMMEDIATE: the read waits for the commit")
    client, prefix = real_redis
    semaphore = built(RedisSemaphore(client, prefix=prefix))
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner, max_concurrency=2)
        run = factories.run(session, camp)
        first = holder_id(attempt(session, run, "+14155550001", AttemptStatus.QUEUED).id)
        session.commit()
        run_id, limit = run.id, camp.max_concurrency
        campaign_scope = SlotScope(camp.id, owner.id, CALLER)
        limits = layered_limits(campaign_scope, limit, None, None, prefix=prefix)
        assert semaphore.acquire(first, limits, LONG_LEASE_S)

    def read(observed: AbstractSet[int]) -> SlotTruth:
        with Session(engine) as reader:
            return read_truth(reader, observed)

    slots = CallSlots(semaphore)
    campaign_key = campaign_scope.campaign_key(prefix)
    with Session(engine) as dispatcher:
        run = dispatcher.get_one(CampaignRun, run_id)
        x = holder_id(attempt(dispatcher, run, "+14155550002", AttemptStatus.QUEUED).id)
        assert semaphore.acquire(x, limits, LONG_LEASE_S)  # admitted; the row is not committed
        result = slots.reconcile(read, LONG_LEASE_S)
        assert not semaphore.acquire("another", limits, LONG_LEASE_S)
        assert semaphore.holders(campaign_key) == {first, x}
        assert not result.changed
        dispatcher.commit()

    assert not slots.reconcile(read, LONG_LEASE_S).changed
    assert semaphore.count(campaign_key) == limit
    assert not semaphore.acquire("another", limits, LONG_LEASE_S)


def test_ended_attempts_are_looked_up_in_chunks(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(truth_module, "ENDED_CHUNK", 2)
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        run = factories.run(session, camp)
        done = [attempt(session, run, f"+1415555000{n}", AttemptStatus.ENDED) for n in range(5)]
        live = attempt(session, run, "+14155550009", AttemptStatus.DIALING)
        session.commit()
        done_ids = {row.id for row in done}
        absent = max(row.id for row in [*done, live]) + 1000
        assert ended_attempts(session, {*done_ids, live.id, absent}) == done_ids
        assert ended_attempts(session, ()) == set()
