"""The waits breakdown as values: groups and queued attempts in, buckets out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.calling_hours import WeeklyScheduleSpec, campaign_window
from dialer.policy.campaign_state import CampaignStatus
from dialer.policy.screen import CampaignFacts
from dialer.policy.waits import QueuedAttempt, Slots, SlotSource, WaitingGroup, campaign_waits

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # Monday 12:00 in New York
P, W = RecipientStatus.PENDING, RecipientStatus.WAITING_RETRY


def _campaign(status: CampaignStatus = CampaignStatus.RUNNING, **window: object) -> CampaignFacts:
    weekly = window.get("weekly")
    spec = WeeklyScheduleSpec.model_validate(weekly) if weekly else None
    return CampaignFacts(status, None, campaign_window(None, None, spec), None)


def _at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


GROUPS = [
    WaitingGroup(P, None, True, 100, _at(-5)),
    WaitingGroup(W, None, True, 7, _at(-1)),
    WaitingGroup(P, "outside-legal-hours", False, 20, _at(300)),
    WaitingGroup(W, "outside-legal-hours", False, 3, _at(120)),
    WaitingGroup(W, "outside-campaign-window", False, 2, _at(600)),
    WaitingGroup(W, None, False, 9, _at(30)),
    WaitingGroup(W, None, False, 1, _at(10)),
]
QUEUED = [
    QueuedAttempt(_at(1), 0),
    QueuedAttempt(None, 0),
    QueuedAttempt(_at(-1), 0),
    QueuedAttempt(_at(2), 2),
]


def test_each_group_lands_in_its_bucket_with_its_earliest_time() -> None:
    waits = campaign_waits(_campaign(), GROUPS, QUEUED, Slots(10, 4, SlotSource.SEMAPHORE), NOW)
    assert (waits.calling, waits.held_by, waits.opens_at) == (True, None, None)
    assert waits.due == 107
    assert (waits.window.count, waits.window.next_open) == (25, _at(120))
    assert (waits.window.legal_hours, waits.window.campaign_window) == (23, 2)
    assert (waits.retry.count, waits.retry.next_at) == (10, _at(10))
    assert (waits.pacer.count, waits.pacer.next_at) == (1, _at(1))
    assert (waits.provider_backoff.count, waits.provider_backoff.next_at) == (1, _at(2))
    assert waits.starting == 2
    assert waits.slots.free == 6


def test_a_closed_campaign_window_holds_every_due_recipient_until_it_opens() -> None:
    weekly = {"timezone": "America/New_York", "hours": [{"start": "13:00", "end": "17:00"}]}
    waits = campaign_waits(
        _campaign(weekly=weekly), GROUPS, [], Slots(10, 0, SlotSource.DATABASE), NOW
    )
    assert (waits.calling, waits.held_by) == (False, "outside-campaign-window")
    assert waits.opens_at == _at(60)  # 13:00 in New York
    assert waits.due == 0
    assert waits.window.count == 132
    assert waits.window.campaign_window == 109
    assert waits.window.next_open == _at(60)


def test_a_paused_campaign_is_held_with_no_opening() -> None:
    waits = campaign_waits(
        _campaign(CampaignStatus.PAUSED), GROUPS[:1], [], Slots(1, 3, SlotSource.DATABASE), NOW
    )
    assert (waits.calling, waits.held_by, waits.opens_at) == (False, "campaign-not-running", None)
    assert waits.due == 100
    assert waits.slots.free == 0  # never negative, even above the limit


def test_recipients_held_by_a_frequency_cap_are_counted_by_cap_not_as_a_window() -> None:
    capped = [
        WaitingGroup(P, "frequency-cap-24h", False, 4, _at(90)),
        WaitingGroup(W, "frequency-cap-24h", False, 1, _at(30)),
        WaitingGroup(P, "frequency-cap-7d", False, 2, _at(3000)),
        WaitingGroup(W, "recently-answered", False, 3, _at(9000)),
    ]
    waits = campaign_waits(_campaign(), GROUPS + capped, [], Slots(10, 0, SlotSource.DATABASE), NOW)
    assert (waits.frequency_cap.count, waits.frequency_cap.next_at) == (10, _at(30))
    assert waits.frequency_cap.reasons == {
        "frequency-cap-24h": 5,
        "frequency-cap-7d": 2,
        "recently-answered": 3,
    }
    # The other buckets are as without them.
    assert (waits.window.count, waits.retry.count, waits.due) == (25, 10, 107)
