"""Live counters move with transitions and reconcile to the database truth."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.calls import counters
from dialer.db.engine import session_factory
from dialer.db.models import Campaign, CampaignCounter, Recipient
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.campaign_state import CampaignStatus
from tests.db import factories

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_bump_reconcile_and_drift_repair(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        owner = factories.tenant(session)
        campaign = factories.campaign(session, owner)
        counters.create(session, campaign.id)
        for n in range(3):
            factories.recipient(session, campaign, f"+1415555267{n}")
        counters.bump(session, campaign.id, counters.moved(None, RecipientStatus.PENDING, 3))
        counters.bump(
            session, campaign.id, counters.moved(RecipientStatus.PENDING, RecipientStatus.QUEUED)
        )
        cid = campaign.id
    with sessions() as session:
        values = counters.read(session, [cid])[cid]
        # The bump above claims one queued recipient that the rows do not have.
        assert values["recipients.pending"] == 2
        assert values["recipients.queued"] == 1
    with sessions() as session, session.begin():
        caplog.set_level(logging.WARNING)
        drift = counters.reconcile(session, cid)
    assert drift == {"recipients.pending": 1, "recipients.queued": -1}
    assert "drift" in caplog.text
    with sessions() as session, session.begin():
        assert counters.reconcile(session, cid) == {}
        assert counters.read(session, [cid])[cid] == counters.truth(session, cid)
        session.execute(
            sa.update(Recipient).values(status=RecipientStatus.DONE)
        )  # a bulk change, then a recount
        assert counters.recount(session, cid)["recipients.done"] == 3


def test_unknown_counter_is_refused(engine: Engine) -> None:
    with session_factory(engine)() as session, session.begin():
        owner = factories.tenant(session)
        campaign = factories.campaign(session, owner)
        counters.create(session, campaign.id)
        with pytest.raises(ValueError, match="unknown counter"):
            counters.bump(session, campaign.id, {"recipients.lost": 1})
        rows = session.scalar(sa.select(sa.func.count()).select_from(CampaignCounter))
        assert rows == len(counters.COUNTER_NAMES) * counters.SHARDS


def test_a_session_not_made_by_session_factory_cannot_bump(engine: Engine) -> None:
    """Its deltas would never be written: nothing runs them before a plain Session commits."""
    with session_factory(engine)() as session, session.begin():
        campaign = factories.campaign(session, factories.tenant(session))
        counters.create(session, campaign.id)
        cid = campaign.id
    with (
        Session(engine) as plain,
        plain.begin(),
        pytest.raises(RuntimeError, match="session_factory"),
    ):
        counters.bump(plain, cid, {"recipients.pending": 1})
    with session_factory(engine)() as session:
        assert counters.read(session, [cid])[cid]["recipients.pending"] == 0


def test_deltas_commit_with_the_transaction_and_a_rollback_forgets_them(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        campaign = factories.campaign(session, factories.tenant(session))
        counters.create(session, campaign.id)
        cid = campaign.id
    pending = {"recipients.pending": 1}
    with sessions() as session:
        with session.begin():
            counters.bump(session, cid, pending)
        session.get_one(Campaign, cid)
        counters.bump(session, cid, {"recipients.pending": 10})
        session.rollback()
        session.get_one(Campaign, cid)
        counters.bump(session, cid, {"recipients.pending": 100})
        session.close()
        # The same session again: neither the rolled back nor the closed deltas come back.
        with session.begin():
            counters.bump(session, cid, pending)
    with sessions() as session:
        assert counters.read(session, [cid])[cid]["recipients.pending"] == 2


def test_reconcile_some_takes_the_live_campaigns_in_rotation(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        owner = factories.tenant(session)
        statuses = [CampaignStatus.RUNNING] * 3 + [CampaignStatus.PAUSED] * 2
        statuses += [CampaignStatus.COMPLETED, CampaignStatus.DRAFT]
        made = [factories.campaign(session, owner, status=status) for status in statuses]
        for campaign in made:
            counters.create(session, campaign.id)
            # Counted, but no such recipient exists: drift in every campaign.
            counters.bump(session, campaign.id, {"recipients.pending": 1})
        live = sorted(c.id for c in made[:5])
        completed, draft = made[5].id, made[6].id

    passes = []
    cursor: str | None = None
    for _ in range(3):
        cursor, drift = counters.reconcile_some(sessions, cursor, limit=2)
        passes.append((cursor, list(drift)))
        assert all(found == {"recipients.pending": -1} for found in drift.values())
    assert passes == [(live[1], live[:2]), (live[3], live[2:4]), (None, live[4:])]
    # The drift found was repaired; the completed and draft campaigns kept theirs.
    with sessions() as session, session.begin():
        assert all(counters.reconcile(session, cid) == {} for cid in live)
        left = counters.read(session, [completed, draft])
        assert [left[cid]["recipients.pending"] for cid in (completed, draft)] == [1, 1]
    # The cursor wrapped: the next pass starts over, and finds nothing more to repair.
    assert counters.reconcile_some(sessions, cursor, limit=2) == (
        live[1],
        {cid: {} for cid in live[:2]},
    )
