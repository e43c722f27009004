"""Calling rules by place, as data: the weekly hours and the holiday rule of each country (and,
in the United States, each state), read from a versioned TOML file.

The package ships ``rules/calling_rules.toml`` (its header documents the format); an operator
replaces it with a file of their own (``DIALER_CALLING_RULES_FILE``). A file is read and
checked once, at start-up: an error names the file, the place and the field. A place is
looked up as ``CC-SUB``, then its country ``CC``, then ``default``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import holidays as holiday_calendars
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialer.policy.hours_spec import HoursSpec
from dialer.policy.windows import WEEKDAYS, DailyHours, parse_hours

DEFAULT_KEY = "default"
_SHIPPED = "calling_rules.toml"


class CallingRulesError(ValueError):
    """A rules file that cannot be used, and why (naming the place and the field)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One place's calling hours."""

    #: The entry it was read from: ``US-FL``, ``US``, ``default``.
    key: str
    hours: tuple[DailyHours, ...]
    #: Hours on a public holiday: None keeps the weekly hours, ``()`` closes the day.
    holiday_hours: tuple[DailyHours, ...] | None
    source: str | None = None


@dataclass(frozen=True, eq=False)
class RuleBook:
    """A rules file, read: compared and hashed by identity (compiled windows are cached per
    book)."""

    version: str
    default: Rule
    places: Mapping[str, Rule]

    def rule_for(self, country: str | None, subdivision: str | None) -> Rule:
        if country and subdivision:
            found = self.places.get(f"{country}-{subdivision}")
            if found is not None:
                return found
        if country:
            found = self.places.get(country)
            if found is not None:
                return found
        return self.default


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    hours: tuple[HoursSpec, ...] = Field(min_length=1, max_length=50)
    holidays: Literal["as-usual", "closed"] | tuple[HoursSpec, ...] = "as-usual"

    @field_validator("hours", "holidays")
    @classmethod
    def _within_a_day(cls, value: Any) -> Any:
        for row in value if isinstance(value, tuple) else ():
            if row.end != "24:00" and row.end <= row.start:
                raise ValueError(f"{row.start}-{row.end} crosses midnight: split it in two rows")
        return value


class _BookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    default: _RuleSpec
    places: dict[str, _RuleSpec] = Field(default_factory=dict)

    @field_validator("places")
    @classmethod
    def _known_places(cls, value: dict[str, _RuleSpec]) -> dict[str, _RuleSpec]:
        for key, spec in value.items():
            problem = _place_problem(key, needs_calendar=spec.holidays != "as-usual")
            if problem:
                raise ValueError(f"{key}: {problem}")
        return value


def _place_problem(key: str, *, needs_calendar: bool) -> str | None:
    country, _, subdivision = key.partition("-")
    if len(country) != 2 or not country.isascii() or not country.isupper():
        return "a place is an ISO 3166-1 country code (FR) or an ISO 3166-2 subdivision (US-FL)"
    supported = holiday_calendars.list_supported_countries()
    if subdivision and subdivision not in supported.get(country, ()):
        return f"{subdivision} is not a known subdivision of {country}"
    if needs_calendar and country not in supported:
        return f"no public holiday calendar is known for {country}: holidays must be as-usual"
    return None


def _rule(key: str, spec: _RuleSpec) -> Rule:
    def rows(specs: tuple[HoursSpec, ...]) -> tuple[DailyHours, ...]:
        return parse_hours((s.days, s.start, s.end) for s in specs)

    if spec.holidays == "as-usual":
        holiday: tuple[DailyHours, ...] | None = None
    elif spec.holidays == "closed":
        holiday = ()
    else:
        holiday = parse_hours((WEEKDAYS, s.start, s.end) for s in spec.holidays)
    return Rule(key, rows(spec.hours), holiday, spec.source)


def parse_rules(text: str, *, name: str = "calling rules") -> RuleBook:
    """A rule book from the TOML ``text`` of file ``name``, or :class:`CallingRulesError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CallingRulesError(f"{name}: not valid TOML: {exc}") from None
    try:
        spec = _BookSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise CallingRulesError(f"{name}: " + "; ".join(problems)) from None
    places = {key: _rule(key, rule) for key, rule in spec.places.items()}
    return RuleBook(spec.version, _rule(DEFAULT_KEY, spec.default), places)


def load_rules(path: Path | None = None) -> RuleBook:
    """The rules of the file at ``path``; the shipped rules when None."""
    if path is None:
        return _shipped()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CallingRulesError(f"{path}: cannot be read: {exc}") from None
    return parse_rules(text, name=str(path))


_shipped_book: RuleBook | None = None
_active: RuleBook | None = None


def _shipped() -> RuleBook:
    global _shipped_book
    if _shipped_book is None:
        text = resources.files("dialer.policy").joinpath("rules", _SHIPPED).read_text("utf-8")
        _shipped_book = parse_rules(text, name=_SHIPPED)
    return _shipped_book


def use_rules(book: RuleBook | None) -> None:
    """Make ``book`` the rules this process screens with (None: the shipped rules).

    Entry points call it once at start-up, from the settings (see :func:`configure`).
    """
    global _active
    _active = book


def configure(path: Path | None) -> RuleBook:
    """Read the rules file the settings name (or the shipped one) and use it."""
    book = load_rules(path)
    use_rules(book)
    return book


def active_rules() -> RuleBook:
    """The rules this process screens with."""
    return _active if _active is not None else _shipped()
