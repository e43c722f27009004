"""Calls above the CPS limit wait in ``queued``; the stats count what the dialer did."""

from __future__ import annotations

import dataclasses
import itertools

import httpx

from dialer.carrier import RunningCarrier
from dialer.telephony.base import CallStatus
from dialer.telephony.twilio.adapter import TwilioProvider
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver, only, wait_until


def _provider(running: RunningCarrier, receiver: Receiver) -> TwilioProvider:
    return TwilioProvider(
        running.account_sid,
        running.auth_token,
        webhooks=receiver.webhooks,
        base_url=running.base_url,
    )


def test_calls_above_the_cps_limit_wait_in_queued(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    # One call leaves the queue every 0.2 s; each then rings for 0.15 s.
    running = start_carrier(profile=only("no_answer"), cps=5.0)
    provider = _provider(running, receiver)
    requests = [receiver.request() for _ in range(4)]
    placed = [provider.place_call(request) for request in requests]
    assert all(p.status is CallStatus.QUEUED for p in placed)
    assert [provider.fetch(p.provider_call_id).status for p in placed[2:]] == [
        CallStatus.QUEUED,
        CallStatus.QUEUED,
    ]
    assert running.stats()["peak"]["total"] == 4  # queued calls count as live

    def initiated_at(attempt_id: str) -> list[float]:
        return [
            r.at
            for r in receiver.received(attempt_id, "status")
            if r.params["CallStatus"] == "initiated"
        ]

    wait_until(lambda: all(initiated_at(r.attempt_id) for r in requests))
    starts = sorted(initiated_at(r.attempt_id)[0] for r in requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap > 0.15 for gap in gaps), gaps
    wait_until(lambda: running.stats()["ended_by_status"].get("no-answer") == 4)


def test_stats_count_live_and_peak_calls_per_caller_and_campaign(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("human", talk_s=100_000))
    provider = _provider(running, receiver)
    a, b = "+15550000001", "+15550000002"
    calls = [
        receiver.request(from_=a, to="+15557770001"),
        receiver.request(from_=a, to="+15557770002"),
        receiver.request(from_=a, to="+15557770001"),
        receiver.request(from_=b, to="+15557770003"),
        receiver.request(from_=a, to="+15557770004"),
    ]
    campaigns = ["c1", "c1", "c1", "c2", ""]
    sids = []
    for request, campaign in zip(calls, campaigns, strict=True):
        request = dataclasses.replace(request, campaign_id=campaign)
        sids.append(provider.place_call(request).provider_call_id)

    stats = httpx.get(f"{running.base_url}/__carrier__/stats", timeout=5).json()
    assert stats["total_calls"] == 5
    assert stats["live"] == {
        "total": 5,
        "by_caller": {a: 4, b: 1},
        "by_campaign": {"c1": 3, "c2": 1, a: 1},  # no campaign id: grouped by caller
    }
    assert stats["calls_by_to"] == {
        "+15557770001": 2,
        "+15557770002": 1,
        "+15557770003": 1,
        "+15557770004": 1,
    }

    in_progress = CallStatus.IN_PROGRESS
    wait_until(lambda: all(provider.fetch(sid).status is in_progress for sid in sids))
    for sid in sids[:3]:
        provider.hang_up(sid)
    provider.place_call(dataclasses.replace(receiver.request(from_=a), campaign_id=""))
    stats = running.stats()
    assert stats["live"]["by_caller"] == {a: 2, b: 1}
    assert stats["peak"] == {
        "total": 5,
        "by_caller": {a: 4, b: 1},
        "by_campaign": {"c1": 3, "c2": 1, a: 2},
    }
    assert stats["ended_by_status"] == {"completed": 3}
