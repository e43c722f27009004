"""``waiting``: why a running campaign's recipients are not being called, counted as the
dispatcher sees them: a full set of slots, the calls-per-second pace, a window, a retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from dialer.db.models import Campaign
from dialer.policy.campaign_state import CampaignAction
from dialer.policy.waits import CampaignWaits, SlotSource
from dialer.services import campaign_waits
from dialer.services.recipients import add_batch
from tests.flow.harness import Harness, numbers, profile


@dataclass(frozen=True)
class _Row:
    phone_number: str
    time_zone: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    assistant_overrides: dict[str, Any] = field(default_factory=dict)
    region: str | None = None


def _waits(h: Harness, campaign_id: str, *, semaphore: bool = True) -> CampaignWaits:
    with h.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        slots = h.stores.slots if semaphore else None
        return campaign_waits.waits(session, campaign, h.clock.now, slots)


def _add(h: Harness, campaign_id: str, *rows: _Row) -> None:
    with h.session() as session, session.begin():
        campaign = session.get_one(Campaign, campaign_id)
        add_batch(session, campaign, list(rows), now=h.clock.now)


def test_full_slots_and_the_pacer_are_told_apart(engine: Engine) -> None:
    h = Harness(engine, cps=1.0)  # one call start a second
    cid = h.campaign(numbers(6), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    h.run_tasks()
    waits = _waits(h, cid)
    assert waits.calling
    assert waits.held_by is None
    assert (waits.slots.in_use, waits.slots.free) == (2, 0)
    assert waits.slots.source is SlotSource.SEMAPHORE
    # Two claimed: one dialed, the other's task waits for the next second's start.
    assert waits.pacer.count == 1
    assert waits.pacer.next_at is not None
    assert waits.pacer.next_at > h.clock.now
    assert waits.due == 4
    assert (waits.window.count, waits.retry.count, waits.starting) == (0, 0, 0)
    # Without the semaphore the database's calls in flight give the same count.
    from_db = _waits(h, cid, semaphore=False)
    assert (from_db.slots.in_use, from_db.slots.source) == (2, SlotSource.DATABASE)


def test_a_recipient_outside_its_legal_hours_waits_for_them(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(1), max_concurrency=3)
    # 17:00 UTC is 02:00 in Tokyo: legal hours open at 08:00 there, 23:00 UTC.
    _add(h, cid, _Row("+81312345678", "Asia/Tokyo"))
    h.act(cid, CampaignAction.START)
    h.step()
    waits = _waits(h, cid)
    assert waits.window.count == 1
    assert waits.window.legal_hours == 1
    assert waits.window.next_open == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert waits.due == 0
    assert waits.slots.in_use == 1  # the New York number is on a call


def test_a_retry_waits_until_the_policy_time(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    cid = h.campaign(numbers(2), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    for _ in range(10):  # busy after a few seconds; the retry is 60 s later
        h.step()
    waits = _waits(h, cid)
    assert waits.retry.count == 2
    assert waits.retry.next_at is not None
    # The policy's fixed 60 s after calls that ended less than 10 s ago.
    assert h.clock.now + timedelta(seconds=50) <= waits.retry.next_at
    assert waits.retry.next_at <= h.clock.now + timedelta(seconds=60)
    assert (waits.due, waits.window.count, waits.slots.in_use) == (0, 0, 0)


def test_outside_the_campaign_window_every_due_recipient_waits_for_it(engine: Engine) -> None:
    h = Harness(engine)
    h.clock.now = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)  # a Saturday
    weekdays = {
        "timezone": "America/New_York",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    }
    cid = h.campaign(numbers(3), max_concurrency=3, weekly_schedule=weekdays)
    h.act(cid, CampaignAction.START)
    h.step()
    waits = _waits(h, cid)
    monday_nine = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert not waits.calling
    assert waits.held_by == "outside-campaign-window"
    assert waits.opens_at == monday_nine
    assert (waits.window.count, waits.window.campaign_window) == (3, 3)
    assert waits.window.next_open == monday_nine
    assert waits.due == 0


def test_a_paused_campaign_is_held_and_its_due_recipients_counted(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(4), max_concurrency=1)
    waits = _waits(h, cid)
    assert (waits.calling, waits.held_by) == (False, "campaign-not-running")
    assert waits.due == 4
    assert (waits.slots.free, waits.slots.in_use) == (1, 0)


class _UnreachableSlots:
    def in_use(self, campaign_id: str) -> int:
        raise ConnectionError("Redis is down")


def test_slots_the_semaphore_cannot_tell_are_counted_from_the_calls_in_flight(
    engine: Engine,
) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(3), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        campaign = session.get_one(Campaign, cid)
        waits = campaign_waits.waits(
            session,
            campaign,
            h.clock.now,
            _UnreachableSlots(),  # type: ignore[arg-type]
        )
    assert (waits.slots.in_use, waits.slots.source) == (2, SlotSource.DATABASE)
    assert waits.due == 1
