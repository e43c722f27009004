from __future__ import annotations

import pytest

from dialer.errors import InvalidPhoneNumber
from dialer.phone import time_zones_for, to_e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 415 555 2671", "+14155552671"),
        ("(415) 555-2671", "+14155552671"),
        ("+44 20 7946 0000", "+442079460000"),
        (" +33 1 23 45 67 89 ", "+33123456789"),
    ],
)
def test_numbers_normalise_to_e164(raw: str, e164: str) -> None:
    assert to_e164(raw) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("hello", "not a phone number"),
        ("+1 415 555", "length"),
        ("+1 900 555 1234", "premium-rate"),
        ("+999 1234567", "country calling code"),
        ("+1 123 555 0100", "not a valid number"),
    ],
)
def test_rejections_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        to_e164(raw, field="recipients.3.phone_number")
    assert reason in caught.value.reason
    assert caught.value.field == "recipients.3.phone_number"


def test_time_zones_of_a_number() -> None:
    assert time_zones_for("+14155552671") == ("America/Los_Angeles",)
    assert "America/New_York" in time_zones_for("+18005551234")
    assert time_zones_for("+870301234567") == ()
