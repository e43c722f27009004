"""Calling rules by place, as tables: which zones are checked, which rule holds in each, what a
holiday does, and when the next legal instant comes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.policy.calling_hours import (
    UNKNOWN_TIME_ZONE,
    NotCallable,
    legal_hours_for,
)
from dialer.policy.calling_rules import (
    CallingRulesError,
    RuleBook,
    active_rules,
    load_rules,
    parse_rules,
)
from dialer.policy.legal_hours import LegalHours, explain
from dialer.policy.places import Place, number_facts, parse_region

SF = "+14155552671"  # San Francisco: America/Los_Angeles, US-CA (federal hours)
NYC = "+12125552000"  # New York: America/New_York, US-NY (federal hours)
MIAMI = "+13055552000"  # US-FL
TULSA = "+14055552000"  # Oklahoma City: US-OK
SEATTLE = "+12065552000"  # US-WA
BALTIMORE = "+14105552000"  # US-MD
PROVIDENCE = "+14015552000"  # US-RI
JACKSON = "+16015552000"  # US-MS
NEW_HAVEN = "+12035552000"  # US-CT
BIRMINGHAM = "+12055552000"  # US-AL
NEW_ORLEANS = "+15045552000"  # US-LA
DALLAS = "+12145552000"  # US-TX
TOLL_FREE = "+18885552000"  # no state, every NANP zone
PARIS = "+33142345678"
LONDON = "+442079460000"
SATELLITE = "+870301234567"


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def legal(number: str, tz: str | None = None, region: str | None = None) -> LegalHours:
    hours = legal_hours_for(number, tz, region=region)
    assert isinstance(hours, LegalHours)
    return hours


# Which zones a call must be legal in: (number, explicit zone, zones checked).
ZONES = [
    ("number alone", SF, None, ("America/Los_Angeles",)),
    (
        "explicit zone among the number's narrows",
        TOLL_FREE,
        "America/Chicago",
        ("America/Chicago",),
    ),
    ("explicit zone the same", SF, "America/Los_Angeles", ("America/Los_Angeles",)),
    (
        "explicit zone outside is checked with the number's",
        SF,
        "Europe/London",
        ("America/Los_Angeles", "Europe/London"),
    ),
    ("a number of no zone relies on the explicit one", SATELLITE, "Asia/Tokyo", ("Asia/Tokyo",)),
]


@pytest.mark.parametrize(
    ("number", "tz", "zones"), [r[1:] for r in ZONES], ids=[r[0] for r in ZONES]
)
def test_explicit_zone_narrows_never_replaces(number: str, tz: str | None, zones: tuple) -> None:
    assert legal(number, tz).zones == zones


def test_no_zone_and_no_explicit_zone_is_not_callable() -> None:
    assert legal_hours_for(SATELLITE) == NotCallable(UNKNOWN_TIME_ZONE)


def test_an_explicit_zone_cannot_open_a_night_in_the_numbers_zone() -> None:
    # 03:00 in California is 11:00 in London: London alone would allow it; California does not.
    three_am_sf = at("America/Los_Angeles", 2026, 12, 2, 3, 0)
    assert not legal(SF, "Europe/London").allows(three_am_sf)
    # It opens when both allow: 08:00 in California is 16:00 in London.
    assert legal(SF, "Europe/London").next_open(three_am_sf) == at(
        "America/Los_Angeles", 2026, 12, 2, 8, 0
    )


# Where a number is: (number, its place).
PLACES = [
    (SF, Place("US", "CA")),
    (NEW_HAVEN, Place("US", "CT")),  # no code-wide description: every exchange is in CT
    (TOLL_FREE, Place("US", None)),
    ("+16465552000", Place("US", "NY")),  # an overlay of Manhattan
    (PARIS, Place("FR")),
    (LONDON, Place("GB")),
]


@pytest.mark.parametrize(("number", "place"), PLACES)
def test_place_of_a_number(number: str, place: Place) -> None:
    assert number_facts(number).place == place


def test_a_number_of_no_country_has_no_place() -> None:
    assert number_facts(SATELLITE).place is None


# Each rule of the shipped file: (id, number, local instant, allowed).
# 2026-12-02 is a Wednesday, 2026-12-05 a Saturday, 2026-12-06 a Sunday.
RULES = [
    ("federal 08:00", NYC, (2026, 12, 2, 8, 0), True),
    ("federal 20:59", NYC, (2026, 12, 2, 20, 59), True),
    ("federal 21:00", NYC, (2026, 12, 2, 21, 0), False),
    ("federal Sunday", NYC, (2026, 12, 6, 12, 0), True),
    ("federal holiday as usual", NYC, (2026, 12, 25, 12, 0), True),
    ("FL 19:59", MIAMI, (2026, 12, 2, 19, 59), True),
    ("FL 20:00", MIAMI, (2026, 12, 2, 20, 0), False),
    ("OK 20:00", TULSA, (2026, 12, 2, 20, 0), False),
    ("WA 20:00", SEATTLE, (2026, 12, 2, 20, 0), False),
    ("WA 07:59", SEATTLE, (2026, 12, 2, 7, 59), False),
    ("MD 20:00", BALTIMORE, (2026, 12, 2, 20, 0), False),
    ("RI weekday 08:30", PROVIDENCE, (2026, 12, 2, 8, 30), False),
    ("RI weekday 09:00", PROVIDENCE, (2026, 12, 2, 9, 0), True),
    ("RI weekday 18:00", PROVIDENCE, (2026, 12, 2, 18, 0), False),
    ("RI Saturday 09:30", PROVIDENCE, (2026, 12, 5, 9, 30), False),
    ("RI Saturday 16:59", PROVIDENCE, (2026, 12, 5, 16, 59), True),
    ("RI Saturday 17:00", PROVIDENCE, (2026, 12, 5, 17, 0), False),
    ("RI Sunday", PROVIDENCE, (2026, 12, 6, 12, 0), False),
    ("RI Thanksgiving", PROVIDENCE, (2026, 11, 26, 12, 0), False),
    ("RI Independence Day observed (Fri)", PROVIDENCE, (2026, 7, 3, 12, 0), False),
    ("RI Victory Day (state holiday)", PROVIDENCE, (2026, 8, 10, 12, 0), False),
    ("MS Saturday 20:30", JACKSON, (2026, 12, 5, 20, 30), True),
    ("MS Sunday", JACKSON, (2026, 12, 6, 12, 0), False),
    ("MS holiday as usual", JACKSON, (2026, 12, 25, 12, 0), True),
    ("CT 08:30", NEW_HAVEN, (2026, 12, 2, 8, 30), False),
    ("CT 19:59", NEW_HAVEN, (2026, 12, 2, 19, 59), True),
    ("AL Sunday", BIRMINGHAM, (2026, 12, 6, 12, 0), False),
    ("AL 20:00", BIRMINGHAM, (2026, 12, 2, 20, 0), False),
    ("AL Christmas observed (Fri 2027-12-24)", BIRMINGHAM, (2027, 12, 24, 12, 0), False),
    ("LA Sunday", NEW_ORLEANS, (2026, 12, 6, 12, 0), False),
    ("LA Christmas", NEW_ORLEANS, (2026, 12, 25, 12, 0), False),
    ("TX Sunday 11:00", DALLAS, (2026, 12, 6, 11, 0), False),
    ("TX Sunday 12:00", DALLAS, (2026, 12, 6, 12, 0), True),
    ("TX weekday 08:30", DALLAS, (2026, 12, 2, 8, 30), False),
    ("FR weekday 10:00", PARIS, (2026, 12, 2, 10, 0), True),
    ("FR lunch 13:00", PARIS, (2026, 12, 2, 13, 0), False),
    ("FR 14:00", PARIS, (2026, 12, 2, 14, 0), True),
    ("FR 20:00", PARIS, (2026, 12, 2, 20, 0), False),
    ("FR 09:59", PARIS, (2026, 12, 2, 9, 59), False),
    ("FR Saturday", PARIS, (2026, 12, 5, 11, 0), False),
    ("FR Armistice (Wed 2026-11-11)", PARIS, (2026, 11, 11, 11, 0), False),
    ("FR Ascension (Thu 2026-05-14)", PARIS, (2026, 5, 14, 11, 0), False),
    ("GB default 08:00-21:00", LONDON, (2026, 12, 6, 20, 59), True),
]


@pytest.mark.parametrize(
    ("number", "local", "allowed"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_each_place_rule(number: str, local: tuple[int, ...], allowed: bool) -> None:
    hours = legal(number)
    (tz,) = hours.zones
    assert hours.allows(at(tz, *local)) is allowed


# The next legal instant across weekends and holidays: (id, number, from, opens).
NEXT_OPEN = [
    # Friday 2026-12-25 (Christmas), then the weekend: Monday 10:00.
    ("FR Christmas and weekend", PARIS, (2026, 12, 24, 20, 0), (2026, 12, 28, 10, 0)),
    # Good Friday is no French holiday; Easter Monday 2026-04-06 is: 4 days closed.
    ("FR Easter", PARIS, (2026, 4, 3, 20, 0), (2026, 4, 7, 10, 0)),
    ("FR lunch", PARIS, (2026, 12, 2, 13, 30), (2026, 12, 2, 14, 0)),
    # Christmas 2027 is a Saturday: observed Friday 24th, then Sunday: Monday 08:00.
    ("AL Christmas and Sunday", BIRMINGHAM, (2027, 12, 23, 20, 0), (2027, 12, 27, 8, 0)),
    # Thanksgiving Thursday, then Friday 09:00.
    ("RI Thanksgiving", PROVIDENCE, (2026, 11, 25, 18, 0), (2026, 11, 27, 9, 0)),
    ("RI Saturday after a Friday evening", PROVIDENCE, (2026, 12, 4, 18, 0), (2026, 12, 5, 10, 0)),
    ("TX Sunday noon", DALLAS, (2026, 12, 5, 21, 0), (2026, 12, 6, 12, 0)),
]


@pytest.mark.parametrize(
    ("number", "start", "opens"), [r[1:] for r in NEXT_OPEN], ids=[r[0] for r in NEXT_OPEN]
)
def test_next_open_across_holidays(
    number: str, start: tuple[int, ...], opens: tuple[int, ...]
) -> None:
    hours = legal(number)
    (tz,) = hours.zones
    assert hours.next_open(at(tz, *start)) == at(tz, *opens)


def test_holidays_are_judged_on_the_local_date_of_each_zone() -> None:
    # A French region on a Honolulu number: the French rule is checked in Honolulu, on
    # Honolulu's date. 19:00 on Thursday 24 December there is already Christmas Day in Paris.
    hours = legal("+18085552000", region="FR")
    assert {c.rule.key for c in hours.checks} == {"US", "FR"}
    assert hours.allows(at("Pacific/Honolulu", 2026, 12, 24, 19, 0))
    # On the 25th of Honolulu, the French rule closes it.
    assert not hours.allows(at("Pacific/Honolulu", 2026, 12, 25, 11, 0))


# An explicit region: (number, region, rules applied).
REGIONS = [
    ("no state known: the region narrows", TOLL_FREE, "US-FL", {"US-FL"}),
    ("the same state", MIAMI, "US-FL", {"US-FL"}),
    ("the country only", MIAMI, "US", {"US-FL"}),
    ("another state: both", SF, "US-FL", {"US", "US-FL"}),
    ("another country: both", LONDON, "FR", {"default", "FR"}),
    ("a number of no country: the region alone", SATELLITE, "FR", {"FR"}),
]


@pytest.mark.parametrize(
    ("number", "region", "rules"), [r[1:] for r in REGIONS], ids=[r[0] for r in REGIONS]
)
def test_explicit_region_narrows_or_adds(number: str, region: str, rules: set[str]) -> None:
    tz = "Asia/Tokyo" if number == SATELLITE else None
    assert {c.rule.key for c in legal(number, tz, region).checks} == rules


def test_a_contradicting_region_applies_the_strictest() -> None:
    # 20:30 in California: federal hours allow it, Florida's do not.
    evening = at("America/Los_Angeles", 2026, 12, 2, 20, 30)
    assert legal(SF).allows(evening)
    assert not legal(SF, region="US-FL").allows(evening)


@pytest.mark.parametrize(
    ("text", "place"), [("us-fl", Place("US", "FL")), ("FR", Place("FR")), ("gb", Place("GB"))]
)
def test_region_codes(text: str, place: Place) -> None:
    assert parse_region(text) == place


@pytest.mark.parametrize("text", ["", "U", "USA", "US-", "US-FLOR", "1S", "US_FL", " GB"])
def test_bad_region_codes(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 3166"):
        parse_region(text)


def test_explain_records_the_zones_local_times_rules_and_version() -> None:
    hours = legal(SF, "Europe/London", region="US-FL")
    now = at("America/Los_Angeles", 2026, 12, 2, 20, 30)
    record = explain(hours, now)
    assert record["rules_version"] == active_rules().version
    assert record["checks"] == [
        {
            "zone": "America/Los_Angeles",
            "local_time": "2026-12-02T20:30:00-08:00",
            "rule": "US",
            "place": "US-CA",
            "holiday": False,
            "open": True,
        },
        {
            "zone": "America/Los_Angeles",
            "local_time": "2026-12-02T20:30:00-08:00",
            "rule": "US-FL",
            "place": "US-FL",
            "holiday": False,
            "open": False,
        },
        {
            "zone": "Europe/London",
            "local_time": "2026-12-03T04:30:00+00:00",
            "rule": "US",
            "place": "US-CA",
            "holiday": False,
            "open": False,
        },
        {
            "zone": "Europe/London",
            "local_time": "2026-12-03T04:30:00+00:00",
            "rule": "US-FL",
            "place": "US-FL",
            "holiday": False,
            "open": False,
        },
    ]


def test_compiled_hours_are_shared_between_recipients() -> None:
    assert legal_hours_for("+12125552000") is legal_hours_for("+12125553000")


# --- The rules file ---

OWN = """
version = "acme-7"

[default]
hours = [{ start = "09:00", end = "18:00" }]

[places.US]
hours = [{ days = ["mon", "tue", "wed", "thu", "fri"], start = "10:00", end = "16:00" }]
holidays = [{ start = "12:00", end = "14:00" }]
"""


def test_an_operators_file_replaces_the_shipped_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(OWN)
    book = load_rules(path)
    assert book.version == "acme-7"
    hours = legal_hours_for(NYC, rules=book)
    assert isinstance(hours, LegalHours)
    assert hours.rules_version == "acme-7"
    assert not hours.allows(at("America/New_York", 2026, 12, 2, 9, 30))
    assert hours.allows(at("America/New_York", 2026, 12, 2, 10, 0))
    assert not hours.allows(at("America/New_York", 2026, 12, 5, 12, 0))  # Saturday
    # Christmas 2026, a Friday: the holiday hours, 12:00-14:00.
    assert not hours.allows(at("America/New_York", 2026, 12, 25, 11, 0))
    assert hours.allows(at("America/New_York", 2026, 12, 25, 13, 0))
    # No rule for France: the file's default.
    paris = legal_hours_for(PARIS, rules=book)
    assert isinstance(paris, LegalHours)
    assert [c.rule.key for c in paris.checks] == ["default"]


BAD_FILES = [
    ("not toml", "version = ", "not valid TOML"),
    (
        "no version",
        '[default]\nhours = [{ start = "08:00", end = "21:00" }]',
        "version: Field required",
    ),
    (
        "a place's field",
        'version = "1"\n[default]\nhours = [{ start = "08:00", end = "21:00" }]\n'
        '[places.US-FL]\nhours = [{ start = "8am", end = "20:00" }]',
        "places.US-FL.hours.0.start",
    ),
    (
        "crossing midnight",
        'version = "1"\n[default]\nhours = [{ start = "20:00", end = "02:00" }]',
        "crosses midnight",
    ),
    (
        "unknown place",
        'version = "1"\n[default]\nhours = [{ start = "08:00", end = "21:00" }]\n'
        '[places.US-ZZ]\nhours = [{ start = "08:00", end = "20:00" }]',
        "US-ZZ: ZZ is not a known subdivision of US",
    ),
    (
        "unknown holiday rule",
        'version = "1"\n[default]\nhours = [{ start = "08:00", end = "21:00" }]\n'
        '[places.FR]\nhours = [{ start = "08:00", end = "20:00" }]\nholidays = "sometimes"',
        "places.FR.holidays",
    ),
    (
        "unknown field",
        'version = "1"\n[default]\nhours = [{ start = "08:00", end = "21:00" }]\nopen = 1',
        "open: Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [r[1:] for r in BAD_FILES], ids=[r[0] for r in BAD_FILES]
)
def test_a_bad_rules_file_names_the_place_and_field(text: str, message: str) -> None:
    with pytest.raises(CallingRulesError, match=r"^rules\.toml: ") as caught:
        parse_rules(text, name="rules.toml")
    assert message in str(caught.value)


def test_the_shipped_rules_load() -> None:
    book = load_rules()
    assert isinstance(book, RuleBook)
    assert book.version
    assert {"US", "US-FL", "US-RI", "FR"} <= set(book.places)
