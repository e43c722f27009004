"""Each recipient's timeline over whole campaigns on a driven clock: what was decided, why,
with which facts, and one row per decision that changed something, not one per tick."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import states
from dialer.db.models import Campaign, Recipient, RecipientDecision
from dialer.policy.calling_rules import active_rules
from dialer.policy.campaign_state import CampaignAction
from dialer.policy.screen import Deferred, ScreenReason, Terminal
from dialer.services import timeline as reading
from tests.flow.harness import Harness, numbers, profile
from tests.flow.test_screen import CASES, _stage

RETRY = {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "60s"}, "jitter": 0}


def _timelines(h: Harness, campaign_id: str) -> dict[int, list[reading.Decision]]:
    with h.session() as session:
        ids = session.scalars(
            sa.select(Recipient.id).where(Recipient.campaign_id == campaign_id)
        ).all()
        return reading.of_recipients(session, ids)


def _rows(h: Harness, campaign_id: str) -> int:
    with h.session() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(RecipientDecision)
                .where(RecipientDecision.campaign_id == campaign_id)
            )
            or 0
        )


def test_dials_outcomes_retries_and_ends_are_on_the_timeline(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    cid = h.campaign(numbers(3), max_concurrency=3, retry_policy=RETRY)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    timelines = _timelines(h, cid)
    assert len(timelines) == 3
    for decisions in timelines.values():
        kinds = [d.kind for d in decisions]
        assert kinds == ["dialed", "outcome", "dialed", "outcome", "exhausted"]
        first_dial, first_end, second_dial, last_end, ended = decisions
        assert first_end.reason == "busy"
        assert first_end.attempt_id == first_dial.attempt_id
        assert first_end.until is not None
        assert first_end.until >= first_end.at + timedelta(seconds=60)  # the retry's due time
        assert second_dial.at >= first_end.until
        assert last_end.until is None
        assert ended.reason == "last-outcome-busy"
        assert [d.id for d in decisions] == sorted(d.id for d in decisions)
        zones = first_dial.facts["zones"]
        assert [z["zone"] for z in zones] == ["America/New_York"]
        local = datetime.fromisoformat(zones[0]["local_time"])
        assert local == first_dial.at.astimezone(ZoneInfo("America/New_York"))
        assert local.utcoffset() == timedelta(hours=-5)
        # New York numbers: the US federal rule (New York has no stricter one), no holiday.
        assert (zones[0]["rule"], zones[0]["place"], zones[0]["holiday"]) == ("US", "US-NY", False)
        assert zones[0]["open"] is True
        assert first_dial.facts["rules_version"] == active_rules().version
        assert first_dial.facts["consent"] is None  # no record: the campaign needs none


def test_a_deferral_is_written_once_not_on_every_tick(engine: Engine) -> None:
    """Recipients outside their legal hours (Tokyo at 02:00) are deferred to 08:00 there:
    one row each, however many ticks pass before."""
    h = Harness(engine)
    cid = h.campaign(numbers(4), max_concurrency=2)
    with h.session() as session, session.begin():
        session.execute(
            sa.update(Recipient).where(Recipient.campaign_id == cid).values(time_zone="Asia/Tokyo")
        )
    h.act(cid, CampaignAction.START)
    for _ in range(30):
        h.step(1.0)
    timelines = _timelines(h, cid)
    assert len(timelines) == 4
    opens = datetime(2026, 11, 24, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    for decisions in timelines.values():
        assert [(d.kind, d.reason, d.until) for d in decisions] == [
            ("deferred", "outside-legal-hours", opens)
        ]
    assert _rows(h, cid) == 4


def test_a_stop_cancels_with_one_row_per_recipient(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(5), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step(1.0)
    h.act(cid, CampaignAction.STOP)
    timelines = _timelines(h, cid)
    canceled = [d for ds in timelines.values() for d in ds if d.kind == "canceled"]
    assert len(canceled) == 4  # the one on a call finishes it
    assert {d.reason for d in canceled} == {"campaign-stopped"}
    with h.session() as session:
        assert session.get_one(Campaign, cid).status.value == "completed"


@pytest.mark.parametrize("case", list(CASES))
def test_the_screens_decisions_land_on_the_timeline(engine: Engine, case: str) -> None:
    """Whatever the screen decides, at the dial (with the attempt it turned away) or at
    dispatch, is on the recipient's timeline with its reason and due time."""
    fields, change, expected = CASES[case]
    staged = _stage(engine, **fields)
    h = staged.h
    change(staged)
    h.runtime.placer.dial(staged.attempt_id)
    ticked = h.runtime.dispatcher.tick(h.clock.now, campaign_ids=[staged.unclaimed])
    kind = expected.status.value if isinstance(expected, Terminal) else "deferred"
    until = expected.until if isinstance(expected, Deferred) else None
    [claimed] = _timelines(h, staged.claimed).values()
    last = claimed[-1]
    assert (last.kind, last.reason, last.until) == (kind, expected.reason, until)
    assert last.attempt_id == staged.attempt_id
    unclaimed = _timelines(h, staged.unclaimed)
    if staged.unclaimed in ticked.screened.held and staged.unclaimed not in ticked.window_closed:
        assert unclaimed == {}  # a campaign-wide hold moves no recipient: nothing to record
    else:
        [[decision]] = unclaimed.values()
        assert (decision.kind, decision.reason, decision.until) == (kind, expected.reason, until)
        assert decision.attempt_id is None


def test_the_same_deferral_again_writes_nothing(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(1))
    later = h.clock.now + timedelta(hours=3)
    decision = Deferred(later, ScreenReason.OUTSIDE_LEGAL_HOURS)
    for _ in range(3):
        with h.session() as session, session.begin():
            recipient = session.scalars(
                sa.select(Recipient).where(Recipient.campaign_id == cid)
            ).one()
            states.screened_out(session, recipient, decision, h.clock.now)
    with h.session() as session, session.begin():
        recipient = session.scalars(sa.select(Recipient).where(Recipient.campaign_id == cid)).one()
        moved = Deferred(later + timedelta(hours=1), ScreenReason.OUTSIDE_LEGAL_HOURS)
        states.screened_out(session, recipient, moved, h.clock.now)
    [decisions] = _timelines(h, cid).values()
    assert [d.until for d in decisions] == [later, later + timedelta(hours=1)]
