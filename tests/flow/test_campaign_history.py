"""The dialer's own changes to a campaign are in its history, as ``system``."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.models import CampaignHistory
from dialer.policy.campaign_state import CampaignAction
from tests.flow.harness import Harness, numbers, profile


def _entries(h: Harness, cid: str) -> list[CampaignHistory]:
    with h.session() as session:
        return list(
            session.scalars(
                sa.select(CampaignHistory)
                .where(CampaignHistory.campaign_id == cid)
                .order_by(CampaignHistory.id)
            )
        )


def test_a_campaign_completing_is_recorded_as_the_systems(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(2), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)

    last = _entries(h, cid)[-1]
    assert (last.actor, last.kind, last.api_key_id) == ("system", "action", None)
    assert last.details["action"] == "finish"
    assert last.details["ended_reason"] == "campaign.ended.success"


def test_a_window_closing_is_recorded_as_the_systems(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, no_answer=1.0))
    end = h.clock.now + timedelta(minutes=2)
    cid = h.campaign(numbers(6), max_concurrency=2, schedule_end_time=end)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid, seconds=5)

    entries = _entries(h, cid)
    assert [(e.actor, e.details.get("action")) for e in entries] == [
        ("operator", None),
        ("operator", "start"),
        ("system", "close_window"),
    ]
    assert entries[-1].details["ended_reason"] == "campaign.ended.window-closed"
