"""Where a number rings: its candidate time zones, its country and (in the US) its state, and
how a recipient's explicit zone and region narrow them.

A number's country is its ``phonenumbers`` region; a US number's state comes from its area
code, which lies in one state (overlays included). A code of no one place (toll-free 800/888,
non-geographic 5xx and the like) has no state: the federal rule then holds in every zone.

Explicit facts narrow, never widen: an explicit zone among the number's zones narrows them to
it; one outside them is checked together with them. An explicit region that contradicts the
number adds its rules to the number's (the strictest of both holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException
from phonenumbers.geodata import GEOCODE_DATA

from dialer.phone import zones_of

_US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington State": "WA",
    "Washington D.C.": "DC", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip
_US_CODES = frozenset(_US_STATES.values())


@dataclass(frozen=True, slots=True)
class Place:
    """A country (ISO 3166-1 alpha-2) and optionally a subdivision of it (``US`` + ``FL``)."""

    country: str
    subdivision: str | None = None

    def __str__(self) -> str:
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country


@dataclass(frozen=True, slots=True)
class NumberFacts:
    """What a number alone says of where it rings."""

    zones: tuple[str, ...]
    #: None for a number of no country (satellite, international networks).
    place: Place | None


def parse_region(text: str) -> Place:
    """``"US-FL"`` or ``"FR"`` as a place (upper-cased); ValueError saying what it takes."""
    country, sep, subdivision = text.upper().partition("-")
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise ValueError("an ISO 3166-1 country code (FR) or ISO 3166-2 subdivision (US-FL)")
    if sep and not (1 <= len(subdivision) <= 3 and subdivision.isascii() and subdivision.isalnum()):
        raise ValueError("an ISO 3166-2 subdivision is a country code, '-' and 1-3 letters/digits")
    return Place(country, subdivision or None)


@lru_cache(maxsize=65_536)
def number_facts(e164: str) -> NumberFacts:
    """The zones and place of an E.164 number (cached: a number's facts never change)."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return NumberFacts((), None)
    zones = zones_of(number)
    country = phonenumbers.region_code_for_number(number)
    if not country or not country.isalpha():  # None, or "001" for non-geographic networks
        return NumberFacts(zones, None)
    state = None
    if country == "US":
        state = _state_of_area_code(str(number.national_number)[:3])
    return NumberFacts(zones, Place(country, state))


def _state_of_area_code(npa: str) -> str | None:
    return _area_code_states().get(npa)


@lru_cache(maxsize=1)
def _area_code_states() -> dict[str, str]:
    """Each US area code that lies in one state, and that state: read once from the
    geocoder's descriptions of the code, or else of every exchange in it (all in one state)."""
    found: dict[str, set[str]] = {}
    whole: dict[str, str] = {}
    for prefix, names in GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        state = _state_named(names.get("en", ""))
        if state is None:
            continue
        if len(prefix) == 4:
            whole[prefix[1:]] = state
        found.setdefault(prefix[1:4], set()).add(state)
    by_exchange = {npa: states.pop() for npa, states in found.items() if len(states) == 1}
    return {**by_exchange, **whole}


def _state_named(described: str) -> str | None:
    """``California``, ``San Francisco, CA`` -> the state's code; None for anything else."""
    if described in _US_STATES:
        return _US_STATES[described]
    _, _, suffix = described.rpartition(", ")
    return suffix if suffix in _US_CODES else None


def candidate_zones(facts: NumberFacts, explicit_tz: str | None) -> tuple[str, ...]:
    """The zones a call must be legal in (empty: none is known)."""
    if not explicit_tz:
        return facts.zones
    if explicit_tz in facts.zones or not facts.zones:
        return (explicit_tz,)
    return tuple(sorted({*facts.zones, explicit_tz}))


def rule_places(facts: NumberFacts, region: str | None) -> tuple[Place | None, ...]:
    """The places whose rules the call must satisfy; ``(None,)`` means the default rule."""
    number = facts.place
    if not region:
        return (number,)
    explicit = parse_region(region)
    if number is None:
        return (explicit,)
    if explicit.country != number.country:
        return (number, explicit)
    if explicit.subdivision is None or explicit == number:
        return (number,)
    if number.subdivision is None:
        return (explicit,)
    return (number, explicit)
