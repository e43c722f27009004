"""Dispatch and dial screen a recipient the same way: one decision for the same facts.

Two identical campaigns call the same number. The first has its recipient claimed (a queued
attempt waiting for its dial task), the second has not been dispatched yet. Something then
changes; the dial task of the first and a dispatch of the second each decide what to do with
their recipient, and the two decisions must be equal. A decision about one recipient leaves
both recipients alike; one about the whole campaign stops dispatch before it reads any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls.results import DialResult
from dialer.db.models import Campaign, NumberContact, Recipient, Suppression
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus, EndedReason
from dialer.policy.screen import Decision, Deferred, ScreenReason, Terminal
from tests.flow.harness import EPOCH, Harness

#: A satellite number: no zone of its own, so only the explicit zone places it.
NUMBER = "+870301234567"
NEW_YORK = "America/New_York"
#: The harness starts at 12:00 in New York, a Monday.
NY_WEEKDAYS_9_TO_13 = {
    "timezone": NEW_YORK,
    "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "13:00"}],
}


@dataclass
class Staged:
    h: Harness
    claimed: str  # its recipient's attempt is queued
    unclaimed: str  # not dispatched yet
    attempt_id: int


def _stage(engine: Engine, **fields: object) -> Staged:
    h = Harness(engine)
    claimed = h.campaign([NUMBER], max_concurrency=1, **fields)
    unclaimed = h.campaign([NUMBER], max_concurrency=1, **fields)
    h.act(claimed, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now, campaign_ids=[claimed])
    [(_, attempt_id)] = h.queue.dials
    h.act(unclaimed, CampaignAction.START)
    return Staged(h, claimed, unclaimed, attempt_id)


def _suppress(s: Staged) -> None:
    # The suppression as a dial sees it when it lands after the dial read the attempt's row:
    # on the list, its queued attempt not yet ended (adding a number through the service ends
    # them itself, so an action in this one thread cannot stage it).
    with s.h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, s.claimed).tenant_id
        session.add(Suppression(tenant_id=tenant_id, phone_number=NUMBER, created_at=EPOCH))


def _forget_zone(s: Staged) -> None:
    with s.h.session() as session, session.begin():
        session.execute(sa.update(Recipient).values(time_zone=None))


def _night_in_new_york(s: Staged) -> None:
    s.h.clock.advance(15 * 3600)  # 03:00 in New York


def _evening_in_florida(s: Staged) -> None:
    # The recipient is in Florida: 20:30 in New York's zone is legal federally, not there.
    with s.h.session() as session, session.begin():
        session.execute(sa.update(Recipient).values(region="US-FL"))
    s.h.clock.advance(8.5 * 3600)


def _afternoon(s: Staged) -> None:
    s.h.clock.advance(2 * 3600)  # 14:00 in New York: legal, past the campaign's 13:00


def _pause(s: Staged) -> None:
    s.h.act(s.claimed, CampaignAction.PAUSE)
    s.h.act(s.unclaimed, CampaignAction.PAUSE)


def _stopped(s: Staged) -> None:
    # The stop as a dial sees it when it lands after the dial read the attempt's row: the
    # campaign has ended, its queued attempt not yet (a stop ends queued attempts itself, so
    # an action in this one thread cannot stage it). Both campaigns get the same rows.
    with s.h.session() as session, session.begin():
        session.execute(
            sa.update(Campaign).values(
                status=CampaignStatus.COMPLETED,
                ended_reason=EndedReason.IN_PROGRESS_ENDED_BY_USER,
            )
        )


def _past_the_schedule_end(s: Staged) -> None:
    s.h.clock.advance(120)


def _contacts(s: Staged, *ago_h: float, answered: bool = False) -> None:
    """The number was called by another campaign of the tenant ``ago_h`` hours ago (each)."""
    with s.h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, s.claimed).tenant_id
        for n, hours in enumerate(ago_h):
            at = s.h.clock.now - timedelta(hours=hours)
            session.add(
                NumberContact(
                    attempt_id=900_000 + n,
                    tenant_id=tenant_id,
                    phone_number=NUMBER,
                    at=at,
                    human_answered_at=at + timedelta(seconds=10) if answered else None,
                )
            )


def _called_thrice_today(s: Staged) -> None:
    _contacts(s, 20, 5, 1)  # the tenant's default: 3 a day


def _answered_an_hour_ago(s: Staged) -> None:
    _contacts(s, 1, answered=True)


TUESDAY_8_NY = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
TUESDAY_9_NY = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
CASES: dict[str, tuple[dict[str, object], Callable[[Staged], None], Decision]] = {
    "suppressed": (
        {},
        _suppress,
        Terminal(RecipientStatus.SUPPRESSED, ScreenReason.SUPPRESSED),
    ),
    "unknown zone": (
        {},
        _forget_zone,
        Terminal(RecipientStatus.SKIPPED, ScreenReason.UNKNOWN_TIME_ZONE),
    ),
    "outside legal hours": (
        {},
        _night_in_new_york,
        Deferred(TUESDAY_8_NY, ScreenReason.OUTSIDE_LEGAL_HOURS),
    ),
    "outside the hours of the recipient's region": (
        {},
        _evening_in_florida,
        Deferred(TUESDAY_8_NY, ScreenReason.OUTSIDE_LEGAL_HOURS),
    ),
    "outside the campaign window": (
        {"weekly_schedule": NY_WEEKDAYS_9_TO_13},
        _afternoon,
        Deferred(TUESDAY_9_NY, ScreenReason.OUTSIDE_CAMPAIGN_WINDOW),
    ),
    "campaign paused": ({}, _pause, Deferred(None, ScreenReason.CAMPAIGN_NOT_RUNNING)),
    "called three times in 24 hours": (
        {},
        _called_thrice_today,
        Deferred(EPOCH + timedelta(hours=4), ScreenReason.FREQUENCY_CAP_24H),
    ),
    "answered within the campaign's quiet days": (
        {"frequency_caps": {"quiet_days_after_answer": 2}},
        _answered_an_hour_ago,
        Deferred(
            EPOCH - timedelta(hours=1) + timedelta(days=2, seconds=10),
            ScreenReason.RECENTLY_ANSWERED,
        ),
    ),
    "campaign stopped": (
        {},
        _stopped,
        Terminal(RecipientStatus.CANCELED, ScreenReason.CAMPAIGN_STOPPED),
    ),
    "campaign schedule over": (
        {"schedule_end_time": EPOCH + timedelta(minutes=1)},
        _past_the_schedule_end,
        Terminal(RecipientStatus.SKIPPED, ScreenReason.WINDOW_CLOSED),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dispatch_and_dial_screen_alike(engine: Engine, case: str) -> None:
    fields, change, expected = CASES[case]
    staged = _stage(engine, **fields)
    h = staged.h
    change(staged)

    dialed = h.runtime.placer.dial(staged.attempt_id)
    ticked = h.runtime.dispatcher.tick(
        h.clock.now, campaign_ids=[staged.unclaimed], keep_decisions=True
    )

    assert dialed.result is DialResult.SCREENED_OUT
    at_dispatch = ticked.screened.held.get(staged.unclaimed) or next(
        iter(ticked.screened.recipients.values()), None
    )
    assert dialed.decision == at_dispatch == expected
    assert ticked.dispatched == [], "nothing claimed"
    assert h.simulator.find_calls(NUMBER, "+14155550100", EPOCH) == [], "nobody called"
    with h.session() as session:
        claimed, unclaimed = (
            session.scalars(sa.select(Recipient).where(Recipient.campaign_id == cid)).one()
            for cid in (staged.claimed, staged.unclaimed)
        )
    # A decision about the whole campaign: dispatch reads none of its recipients; a schedule
    # that is over closes the campaign, which ends them all (as a stop would, by its action).
    held = staged.unclaimed in ticked.screened.held
    if held and expected.reason is ScreenReason.WINDOW_CLOSED:
        assert staged.unclaimed in ticked.window_closed
        held = False
    if held:
        assert (unclaimed.status, unclaimed.next_attempt_at) == (RecipientStatus.PENDING, EPOCH)
    if isinstance(expected, Terminal):
        assert (claimed.status, claimed.reason) == (expected.status, expected.reason)
        if not held:
            assert (unclaimed.status, unclaimed.reason) == (expected.status, expected.reason)
    else:
        # Due again when the decision says: a claim undone waits to retry until then, or is
        # pending again once the campaign runs.
        want = RecipientStatus.PENDING if expected.until is None else RecipientStatus.WAITING_RETRY
        assert claimed.status is want
        assert claimed.next_attempt_at == (expected.until or EPOCH)
        if not held:
            assert unclaimed.status is RecipientStatus.PENDING
            assert unclaimed.next_attempt_at == expected.until
    for cid in (staged.claimed, staged.unclaimed):
        assert h.counts(cid) == h.truth(cid)
    assert h.semaphore.snapshot() == {}, "the claim's slot is freed"


def test_a_tick_counts_whom_it_turned_away_and_keeps_no_decision_unless_asked(
    engine: Engine,
) -> None:
    h = Harness(engine)
    cid = h.campaign([f"+8131234{n:04d}" for n in range(30)], max_concurrency=5)
    with h.session() as session, session.begin():
        session.execute(sa.update(Recipient).values(time_zone="Asia/Tokyo"))  # 02:00 there
    h.act(cid, CampaignAction.START)

    ticked = h.runtime.dispatcher.tick(h.clock.now)

    assert ticked.dispatched == []
    # Each due recipient read is deferred to 08:00 in Tokyo; the tick reads on until none is due.
    assert ticked.screened.reasons == {ScreenReason.OUTSIDE_LEGAL_HOURS: 30}
    assert ticked.screened.recipients == {}
