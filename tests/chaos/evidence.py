"""What the checks read once the run is over: the carrier's call records and the rows.

The carrier is the independent witness (it counts what was really dialed and when); the
database says what the dialer believes. Both are read into small frozen values so the checks
are pure functions over them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.models import CallAttempt, Campaign, Recipient
from tests.e2e.fleet import json_of

_ATTEMPT_IN_URL = re.compile(r"/webhooks/[a-z]+/(\d+)/status")


@dataclass(frozen=True, slots=True)
class CarrierCall:
    sid: str
    campaign: str
    to: str
    status: str
    attempt_id: int | None  # from the status callback URL the dialer gave
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: int
    campaign: str
    recipient_id: int
    attempt_number: int
    to: str
    provider_call_id: str | None
    status: str
    outcome: str | None
    error_code: str | None
    queued_at: datetime
    #: When its dial passed the screen and claimed it (the call started, as the dialer sees
    #: it: a pause or a suppression that commits later leaves the call to go out).
    dialed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RecipientRow:
    id: int
    campaign: str
    number: str
    time_zone: str | None
    status: str
    reason: str | None
    last_outcome: str | None


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: str
    status: str
    max_concurrency: int
    schedule_start: datetime | None
    schedule_end: datetime | None
    weekly_schedule: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Evidence:
    calls: list[CarrierCall]
    stats: dict[str, Any]
    attempts: list[AttemptRow]
    recipients: list[RecipientRow]
    campaigns: dict[str, CampaignRow]
    _dialed: dict[int, datetime | None] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._dialed.update((a.id, a.dialed_at) for a in self.attempts)

    def calls_of(self, campaign: str) -> list[CarrierCall]:
        return [c for c in self.calls if c.campaign == campaign]

    def claimed_at(self, call: CarrierCall) -> datetime:
        """When the dialer started ``call``: its attempt's claim into dialing (the screen
        passed then), or, without one, when the carrier created it."""
        dialed = self._dialed.get(call.attempt_id) if call.attempt_id is not None else None
        return dialed or call.created_at


def carrier_calls(base_url: str) -> tuple[list[CarrierCall], dict[str, Any]]:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=60) as client:
        raw = json_of(client.get("/__carrier__/calls"), 200)
        stats = json_of(client.get("/__carrier__/stats"), 200)
    return [_call(c) for c in raw], stats


def _call(raw: dict[str, Any]) -> CarrierCall:
    if "created_at" not in raw:
        raise AssertionError("the carrier's /__carrier__/calls lacks created_at and ended_at")
    urls = raw["params"].get("StatusCallback") or [""]
    match = _ATTEMPT_IN_URL.search(urls[-1])
    return CarrierCall(
        sid=raw["sid"],
        campaign=raw["campaign"],
        to=raw["to"],
        status=raw["status"],
        attempt_id=int(match.group(1)) if match else None,
        created_at=datetime.fromisoformat(raw["created_at"]),
        ended_at=datetime.fromisoformat(raw["ended_at"]) if raw["ended_at"] else None,
    )


def gather(engine: Engine, carrier_base_url: str, campaign_ids: list[str]) -> Evidence:
    calls, stats = carrier_calls(carrier_base_url)
    with engine.connect() as conn:
        attempts = [
            AttemptRow(
                a.id,
                a.campaign_id,
                a.recipient_id,
                a.attempt_number,
                a.to_number,
                a.provider_call_id,
                _text(a.status) or "",
                _text(a.outcome),
                a.error_code,
                a.queued_at,
                a.dialed_at,
            )
            for a in conn.execute(
                sa.select(CallAttempt.__table__).where(CallAttempt.campaign_id.in_(campaign_ids))
            )
        ]
        recipients = [
            RecipientRow(
                r.id,
                r.campaign_id,
                r.phone_number,
                r.time_zone,
                _text(r.status) or "",
                r.reason,
                _text(r.last_outcome),
            )
            for r in conn.execute(
                sa.select(Recipient.__table__).where(Recipient.campaign_id.in_(campaign_ids))
            )
        ]
        campaigns = {
            c.id: CampaignRow(
                c.id,
                _text(c.status) or "",
                c.max_concurrency,
                c.schedule_start_time,
                c.schedule_end_time,
                c.weekly_schedule,
            )
            for c in conn.execute(
                sa.select(Campaign.__table__).where(Campaign.id.in_(campaign_ids))
            )
        }
    return Evidence(calls, stats, attempts, recipients, campaigns)


def _text(value: object) -> str | None:
    """An enum column's value as text (whether the driver gave the enum or its value)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))
