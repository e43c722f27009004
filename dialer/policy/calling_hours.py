"""Where and when a given recipient may be called: schedules, weekly hours, legal hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from dialer.policy.calling_rules import RuleBook, active_rules
from dialer.policy.hours_spec import HoursSpec
from dialer.policy.legal_hours import LegalHours, PlaceHours
from dialer.policy.places import Place, candidate_zones, number_facts, parse_region, rule_places
from dialer.policy.windows import AllOf, Between, WeeklyHours, Window, parse_hours, zone

#: Reasons a recipient cannot be called at all (stored on the recipient as it is skipped).
UNKNOWN_TIME_ZONE = "unknown-time-zone"


def _valid_zone(name: str) -> str:
    zone(name)
    return name


def _valid_region(text: str) -> str:
    return str(parse_region(text))


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
#: Where a recipient is: an ISO 3166-1 country (``FR``) or ISO 3166-2 subdivision (``US-FL``).
RegionCode = Annotated[
    str,
    AfterValidator(_valid_region),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 2,
            "maxLength": 6,
            "pattern": "^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$",
            "x-server-checks": "an ISO 3166-1 country or ISO 3166-2 subdivision, e.g. US-FL",
        }
    ),
]


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


def legal_hours_for(
    e164: str,
    explicit_tz: str | None = None,
    *,
    region: str | None = None,
    rules: RuleBook | None = None,
) -> LegalHours | NotCallable:
    """The recipient's legal hours: the rules of its place(s) in every zone it may ring in.

    An explicit zone among the number's zones narrows them to it; one outside them is checked
    together with them; it stands alone only for a number that maps to no zone. An explicit
    ``region`` narrows the number's place the same way, and adds its rules when it contradicts
    the number. ``rules``: the process's rules (:func:`~dialer.policy.calling_rules.active_rules`)
    when None.
    """
    facts = number_facts(e164)
    zones = candidate_zones(facts, explicit_tz)
    if not zones:
        return NotCallable(UNKNOWN_TIME_ZONE)
    return _compiled(zones, rule_places(facts, region), rules or active_rules())


@lru_cache(maxsize=8192)
def _compiled(
    zones: tuple[str, ...], places: tuple[Place | None, ...], rules: RuleBook
) -> LegalHours:
    """Legal hours per (zones, places, rule book): built once, shared by every recipient."""
    checks = []
    for tz in zones:
        for place in places:
            rule = rules.rule_for(
                place.country if place else None, place.subdivision if place else None
            )
            checks.append(PlaceHours(tz, rule, place))
    return LegalHours(tuple(dict.fromkeys(checks)), rules.version)


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
