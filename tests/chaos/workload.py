"""The campaigns a chaos run dials: two tenants, three limits, created through the HTTP API.

Every number is of a place whose calling hours stay open through the run (picked at the
start); a few recipients (campaign C) also have an explicit zone where it is now night, which
is checked together with the number's zone, so they must never be called; C's schedule ends
during the run, which ends those recipients ``window-closed``. Campaign A has weekly hours of
its own around the current time. Numbers are unique across the run (one block of the place's
numbers per campaign), so the carrier's per-number records name a recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dialer.policy.open_places import OpenPlace
from tests.chaos.fleet import ChaosFleet
from tests.e2e.fleet import CANDIDATE_ZONES, json_of, place_open_now, register_number

TENANT_ONE = "chaos-one"
TENANT_TWO = "chaos-two"
RETRY_POLICY = {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "2s"}, "jitter": 0}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    key: str
    tenant: str
    caller: str
    first_serial: int  # the campaign's block of the place's numbers starts here
    max_concurrency: int
    recipients: int
    night_recipients: int = 0  # in a zone where it is night: never callable in this run
    ends_after_s: float | None = None  # the schedule's end, from the creation
    weekly_hours: bool = False  # weekly hours of its own, around the current time

    def number(self, place: OpenPlace, serial: int) -> str:
        return place.number(self.first_serial + serial)


def specs(scale: float = 1.0, *, c_ends_after_s: float = 220.0) -> list[CampaignSpec]:
    """The run's campaigns; ``scale`` multiplies the recipients (the soak's larger run)."""

    def n(count: int) -> int:
        return round(count * scale)

    return [
        CampaignSpec("A", TENANT_ONE, "+14155550101", 0, 8, n(400), weekly_hours=True),
        CampaignSpec("B", TENANT_ONE, "+14155550102", 4000, 5, n(250)),
        CampaignSpec(
            "C",
            TENANT_TWO,
            "+14155550103",
            7000,
            3,
            n(150),
            night_recipients=10,
            ends_after_s=c_ends_after_s * scale,
        ),
    ]


def zone_at_night(now: datetime) -> str:
    """A zone whose local time is now furthest from the legal hours (around 02:30)."""

    def distance_from_afternoon(zone: str) -> float:
        local = now.astimezone(ZoneInfo(zone))
        gap = abs(local.hour + local.minute / 60 - 14.5)
        return min(gap, 24 - gap)

    zone = max(CANDIDATE_ZONES, key=distance_from_afternoon)
    hour = now.astimezone(ZoneInfo(zone)).hour
    assert hour >= 22 or hour < 7, f"no candidate zone is at night at {now.isoformat()}"
    return zone


@dataclass(slots=True)
class LiveCampaign:
    spec: CampaignSpec
    id: str
    place: OpenPlace
    night_zone: str
    numbers: list[str]  # every recipient's number, the night ones included
    night_numbers: set[str] = field(default_factory=set)
    body: dict[str, Any] = field(default_factory=dict)  # the last GET

    @property
    def key(self) -> str:
        return self.spec.key


def create_campaigns(fleet: ChaosFleet, campaign_specs: list[CampaignSpec]) -> list[LiveCampaign]:
    """Create every campaign (recipients inline), then start them all."""
    now = datetime.now(UTC)
    place, night = place_open_now(now), zone_at_night(now)
    created = [_create(fleet, spec, now, place, night) for spec in campaign_specs]
    for campaign in created:
        with fleet.client(campaign.spec.tenant) as client:
            started = json_of(client.post(f"/campaign/{campaign.id}/start"), 200)
            assert started["status"] == "running", started
    return created


def _create(
    fleet: ChaosFleet, spec: CampaignSpec, now: datetime, place: OpenPlace, night: str
) -> LiveCampaign:
    numbers = [spec.number(place, i) for i in range(spec.recipients + spec.night_recipients)]
    night_numbers = set(numbers[spec.recipients :])
    body: dict[str, Any] = {
        "name": f"chaos-{spec.key}",
        "assistant_id": "asst_chaos",
        "phone_number_id": spec.caller,
        "caller_id_number": spec.caller,
        "max_concurrency": spec.max_concurrency,
        "retry_policy": RETRY_POLICY,
        "recipients": [
            {"phone_number": number, "metadata": {"serial": i}}
            | ({"time_zone": night} if number in night_numbers else {})
            for i, number in enumerate(numbers)
        ],
    }
    if spec.ends_after_s is not None:
        body["scheduleEndTime"] = (now + timedelta(seconds=spec.ends_after_s)).isoformat()
    if spec.weekly_hours:
        body["weekly_schedule"] = weekly_hours_around(now, place.zone)
    with fleet.client(spec.tenant) as client:
        register_number(client, spec.caller)
        created = json_of(client.post("/campaign", json=body), 201)
    assert created["recipient_batch"]["accepted"] == len(numbers), created["recipient_batch"]
    return LiveCampaign(spec, str(created["id"]), place, night, numbers, night_numbers)


def weekly_hours_around(now: datetime, zone: str) -> dict[str, Any]:
    """Today's hours in ``zone``, from two hours before now to four after (one day: the zone
    is chosen with its local time inside its calling hours, never near midnight)."""
    local = now.astimezone(ZoneInfo(zone))
    start = max(local - timedelta(hours=2), local.replace(hour=0, minute=0))
    end = min(local + timedelta(hours=4), local.replace(hour=23, minute=59))
    return {
        "timezone": zone,
        "hours": [
            {
                "days": [_DAYS[local.weekday()]],
                "start": start.strftime("%H:%M"),
                "end": end.strftime("%H:%M"),
            }
        ],
    }


def append_recipients(fleet: ChaosFleet, campaign: LiveCampaign, count: int) -> list[str]:
    """Append ``count`` recipients to a running campaign through the batch endpoint."""
    first = len(campaign.numbers)
    numbers = [campaign.spec.number(campaign.place, first + i) for i in range(count)]
    batch = {"recipients": [{"phone_number": n, "metadata": {"appended": True}} for n in numbers]}
    with fleet.client(campaign.spec.tenant) as client:
        answer = json_of(client.post(f"/campaign/{campaign.id}/recipients", json=batch), 200)
    assert answer["accepted"] == count, answer
    campaign.numbers.extend(numbers)
    return numbers
