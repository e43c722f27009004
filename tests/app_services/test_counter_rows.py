"""A counter row missing (a counter named after its campaign was created) is created by the
first transaction that counts on it, and the count comes out right."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.calls import counters
from dialer.db.engine import session_factory
from dialer.db.models import Campaign, CampaignCounter, Recipient
from dialer.policy.attempt_state import RecipientStatus
from tests.db import factories

PENDING = counters.recipient_key(RecipientStatus.PENDING)
QUEUED = counters.recipient_key(RecipientStatus.QUEUED)
SKIPPED = counters.recipient_key(RecipientStatus.SKIPPED)
DONE = counters.recipient_key(RecipientStatus.DONE)
EVERY_ROW = len(counters.COUNTER_NAMES) * counters.SHARDS


def campaign_with_pending(session: Session, n: int) -> str:
    """A campaign with its counters and ``n`` pending recipients, counted."""
    campaign = factories.campaign(session, factories.tenant(session))
    counters.create(session, campaign.id)
    for i in range(n):
        factories.recipient(session, campaign, f"+1415555267{i}")
    counters.bump(session, campaign.id, counters.moved(None, RecipientStatus.PENDING, n))
    return campaign.id


def delete_counters(session: Session, campaign_id: str, *names: str) -> None:
    """Delete every shard of the counters ``names``, as if they were named after the campaign
    was created."""
    session.execute(
        sa.delete(CampaignCounter).where(
            CampaignCounter.campaign_id == campaign_id, CampaignCounter.name.in_(names)
        )
    )


def queue_one(session: Session, campaign_id: str) -> None:
    """Move one pending recipient to queued, with its counter deltas."""
    recipient = session.scalars(
        sa.select(Recipient).where(
            Recipient.campaign_id == campaign_id, Recipient.status == RecipientStatus.PENDING
        )
    ).first()
    assert recipient is not None
    recipient.status = RecipientStatus.QUEUED
    counters.bump(
        session, campaign_id, counters.moved(RecipientStatus.PENDING, RecipientStatus.QUEUED)
    )


def rows_of(session: Session, campaign_id: str) -> int | None:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(CampaignCounter)
        .where(CampaignCounter.campaign_id == campaign_id)
    )


def test_missing_rows_are_created_and_counted_on_first_use(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        cid = campaign_with_pending(session, 3)
    with sessions() as session, session.begin():
        delete_counters(session, cid, QUEUED, SKIPPED)
    with sessions() as session, session.begin():
        # The UPDATE finds the pending row of its shard, not the queued one.
        queue_one(session, cid)
    with sessions() as session, session.begin():
        # The UPDATE finds none of its rows.
        campaign = session.get_one(Campaign, cid)
        factories.recipient(session, campaign, "+14155550199", status=RecipientStatus.SKIPPED)
        counters.bump(session, cid, counters.moved(None, RecipientStatus.SKIPPED))
    with sessions() as session, session.begin():
        values = counters.read(session, [cid])[cid]
        assert (values[PENDING], values[QUEUED], values[SKIPPED]) == (2, 1, 1)
        assert rows_of(session, cid) == EVERY_ROW
        assert counters.reconcile(session, cid) == {}


def test_a_recount_creates_the_rows_it_corrects(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        cid = campaign_with_pending(session, 3)
        delete_counters(session, cid, DONE)
    with sessions() as session, session.begin():
        session.execute(
            sa.update(Recipient)
            .where(Recipient.campaign_id == cid)
            .values(status=RecipientStatus.DONE)
        )
        assert counters.recount(session, cid) == {PENDING: -3, DONE: 3}
    with sessions() as session, session.begin():
        assert counters.read(session, [cid])[cid][DONE] == 3
        assert counters.reconcile(session, cid) == {}


@pytest.mark.parametrize(
    ("meanwhile", "recounted"),
    [
        # After the UPDATE that did not see them: which deltas landed is unknown.
        ("UPDATE campaign_counters", True),
        # After the look at which rows the UPDATE found: the INSERT skips them.
        ("SELECT campaign_counters.name", False),
    ],
)
def test_rows_another_transaction_creates_meanwhile_are_counted_once(
    engine: Engine, caplog: pytest.LogCaptureFixture, meanwhile: str, recounted: bool
) -> None:
    """Another transaction, which found the same rows missing, creates them while this one is
    creating them too; the count comes out right either way."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: no other transaction commits in between")
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        cid = campaign_with_pending(session, 3)
        delete_counters(session, cid, QUEUED)
    created: list[str] = []

    def create_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if created or not statement.startswith(meanwhile):
            return
        shards = range(counters.SHARDS)
        rows = [{"campaign_id": cid, "name": QUEUED, "shard": s, "value": 0} for s in shards]
        with engine.begin() as other:
            other.execute(sa.insert(CampaignCounter), rows)
        created.append(statement)

    sa.event.listen(engine, "after_cursor_execute", create_meanwhile)
    try:
        caplog.set_level(logging.INFO, logger=counters.__name__)
        with sessions() as session, session.begin():
            queue_one(session, cid)
    finally:
        sa.event.remove(engine, "after_cursor_execute", create_meanwhile)
    assert created
    assert ("recounting" in caplog.text) is recounted
    with sessions() as session, session.begin():
        values = counters.read(session, [cid])[cid]
        assert (values[PENDING], values[QUEUED]) == (2, 1)
        assert rows_of(session, cid) == EVERY_ROW
        assert counters.reconcile(session, cid) == {}
