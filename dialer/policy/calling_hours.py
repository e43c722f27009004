"""Where and when a given recipient may be called: schedules, weekly hours, legal hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.config import JsonDict

from dialer.phone import time_zones_for
from dialer.policy.windows import (
    WEEKDAYS,
    AllOf,
    Between,
    LegalHours,
    WeeklyHours,
    Window,
    parse_hours,
    zone,
)

#: Reasons a recipient cannot be called at all (stored on the recipient as it is skipped).
UNKNOWN_TIME_ZONE = "unknown-time-zone"


def _valid_zone(name: str) -> str:
    zone(name)
    return name


#: An IANA zone name. The schema gives its shape; the zone database is checked on input
#: (``x-server-checks``: the document marks fields checked beyond their schema).
TimeZoneName = Annotated[
    str,
    AfterValidator(_valid_zone),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
            "x-server-checks": "a zone of the IANA time zone database, e.g. America/New_York",
        }
    ),
]
WallTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
#: A start of hours: a wall time before 24:00 (stated in the schema; checked below).
_START_SCHEMA: JsonDict = {"pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}


class HoursSpec(BaseModel):
    """One row of weekly hours, e.g. ``{"days": ["mon", "fri"], "start": "09:00", "end": "17:00"}``.

    ``end`` at or before ``start`` crosses midnight; ``"24:00"`` ends at midnight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[str, ...] = Field(
        default=WEEKDAYS,
        min_length=1,
        max_length=7,
        json_schema_extra={"items": {"type": "string", "enum": list(WEEKDAYS)}},
    )
    start: WallTime = Field(json_schema_extra=_START_SCHEMA)
    end: WallTime

    @model_validator(mode="after")
    def _check(self) -> HoursSpec:
        unknown = sorted({d for d in self.days if d not in WEEKDAYS})
        if unknown:
            raise ValueError(f"unknown day(s) {unknown}; use {', '.join(WEEKDAYS)}")
        if self.start == "24:00":
            raise ValueError("start must be a wall time before 24:00")
        return self


class WeeklyScheduleSpec(BaseModel):
    """A campaign's weekly calling hours in its own IANA zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName
    hours: tuple[HoursSpec, ...] = Field(min_length=1, max_length=50)

    def to_window(self) -> WeeklyHours:
        return WeeklyHours(self.timezone, parse_hours((h.days, h.start, h.end) for h in self.hours))


@dataclass(frozen=True, slots=True)
class NotCallable:
    """A recipient that no window can ever allow, and why."""

    reason: str


def legal_hours_for(e164: str, explicit_tz: str | None = None) -> LegalHours | NotCallable:
    """The recipient's legal hours: in its explicit zone, else in every zone its number maps to."""
    if explicit_tz:
        return LegalHours((explicit_tz,))
    zones = time_zones_for(e164)
    if not zones:
        return NotCallable(UNKNOWN_TIME_ZONE)
    return LegalHours(zones)


def campaign_window(
    schedule_start: datetime | None,
    schedule_end: datetime | None,
    weekly: WeeklyScheduleSpec | None,
) -> AllOf:
    """When the campaign itself dials: its schedule span and its weekly hours."""
    windows: list[Window] = [Between(schedule_start, schedule_end)]
    if weekly is not None:
        windows.append(weekly.to_window())
    return AllOf(tuple(windows))


def recipient_window(campaign: AllOf, legal: LegalHours) -> AllOf:
    """When this recipient may be dialed for this campaign."""
    return AllOf((*campaign.windows, legal))
