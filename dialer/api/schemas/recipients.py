"""Recipient bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from dialer.api.schemas.common import Input, Output, checked
from dialer.api.schemas.consent import ConsentIn
from dialer.api.schemas.json_object import JsonObject
from dialer.policy.calling_hours import RegionCode, TimeZoneName


class RecipientIn(Input):
    phone_number: str = Field(min_length=1, max_length=40, description="Normalised to E.164.")
    metadata: JsonObject = Field(
        default_factory=dict,
        json_schema_extra=checked(
            "bounded like assistant_overrides; holds every variable of the opening message"
        ),
    )
    assistant_overrides: JsonObject = Field(default_factory=dict)
    time_zone: TimeZoneName | None = Field(
        default=None,
        description="IANA zone. One of the zones the number maps to narrows them to it; any "
        "other is checked together with them (every zone must allow the call); alone only for "
        "a number that maps to no zone.",
    )
    region: RegionCode | None = Field(
        default=None,
        description="Where the recipient is: ISO 3166-1 country (FR) or ISO 3166-2 subdivision "
        "(US-FL), upper-cased. Narrows the number's place; when it contradicts the number, the "
        "rules of both apply.",
    )
    consent: ConsentIn | None = Field(
        default=None,
        description="Recorded for the tenant's number (as `POST /consent` would), whether or "
        "not the recipient is accepted.",
    )


class RecipientBatchIn(Input):
    recipients: list[RecipientIn] = Field(min_length=1, max_length=10_000)


class RecipientCallOut(Output):
    """One attempt made to a recipient: ``id`` names it in ``GET /call/{id}``,
    ``provider_call_id`` at the telephony provider (null until the provider took the call)."""

    id: int
    attempt_number: int
    provider_call_id: str | None


class RecipientOut(Output):
    id: int
    phone_number: str
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    assistant_overrides: dict[str, Any]
    time_zone: str | None
    region: str | None
    status: str
    reason: str | None
    attempt_count: int
    next_attempt_at: datetime | None
    last_outcome: str | None
    created_at: datetime
    updated_at: datetime
    calls: list[RecipientCallOut] = Field(
        default_factory=list,
        description="Its attempts, first first (every run's): the call ids to look up.",
    )


class DecisionOut(Output):
    """One decision of a recipient's timeline, oldest first.

    ``kind``: ``deferred`` (not now: ``until`` says when it is due again, ``reason`` which
    rule), ``dialed`` (``facts.zones``: every zone the number may be in with its local time at
    the dial; ``facts.rules_version``, ``facts.consent``), ``requeued`` (the provider refused
    the call for now), ``outcome`` (an attempt ended: ``reason`` is its outcome, ``until`` the
    retry it scheduled), ``reset`` (a new run), or the terminal state reached (``skipped``,
    ``suppressed``, ``canceled``, ``done``, ``exhausted``) with its reason."""

    id: int
    at: datetime
    kind: str
    reason: str | None
    until: datetime | None
    attempt_id: int | None
    facts: dict[str, Any]
