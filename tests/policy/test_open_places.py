"""The places the demo and the tests call: valid numbers in one zone each, and at any hour of
any day one of them stays open for hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest

from dialer.policy.open_places import (
    PLACES,
    WIDE_PLACES,
    OpenPlace,
    open_for,
    place_closed,
    place_open,
)
from dialer.policy.places import number_facts


@pytest.mark.parametrize(
    "place", PLACES + WIDE_PLACES, ids=[f"{p.name}/{p.width}" for p in PLACES + WIDE_PLACES]
)
def test_every_number_of_a_place_is_valid_and_in_its_zone_alone(place: OpenPlace) -> None:
    step = max(1, place.size // 500)
    for index in [*range(0, place.size, step), place.size - 1]:
        number = place.number(index)
        assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number
        assert number_facts(number).zones == (place.zone,), number


# Every hour (at an odd minute) of the year's most closed weeks: Christmas and New Year,
# Easter 2026, and a plain week.
STARTS = [datetime(2026, 12, 21, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)]


@pytest.mark.parametrize("start", STARTS, ids=[s.date().isoformat() for s in STARTS])
def test_some_place_stays_open_for_hours_at_any_hour(start: datetime) -> None:
    for hour in range(0, 24 * 14):
        now = start + timedelta(hours=hour, minutes=17)
        place = place_open(now, for_at_least=timedelta(hours=4))
        assert open_for(place, now) >= timedelta(hours=4)
        wide = place_open(now, for_at_least=timedelta(hours=2), places=WIDE_PLACES)
        assert open_for(wide, now) >= timedelta(hours=2)
        closed = place_closed(now)
        assert open_for(closed, now) == timedelta(0)


def test_a_place_has_ten_thousand_numbers() -> None:
    with pytest.raises(ValueError, match="0 to 9999"):
        PLACES[0].number(10_000)
    assert WIDE_PLACES[0].number(0) == "+12122000000"
