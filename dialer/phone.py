"""Phone numbers: validation to E.164 and the time zones a number may ring in."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType
from phonenumbers import timezone as number_timezones

from dialer.errors import InvalidPhoneNumber, ValidationError

DEFAULT_REGION = "US"
_UNKNOWN_ZONE = "Etc/Unknown"
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_UNDIALABLE = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate numbers are not dialed",
    PhoneNumberType.SHARED_COST: "shared-cost numbers are not dialed",
    PhoneNumberType.UAN: "universal access numbers are not dialed",
    PhoneNumberType.PAGER: "pager numbers are not dialed",
}


def to_e164(raw: str, *, field: str = "phone_number", region: str = DEFAULT_REGION) -> str:
    """``raw`` as an E.164 string, or :class:`InvalidPhoneNumber` saying why not.

    Numbers without a leading ``+`` are read as national numbers of ``region``.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber(field, "empty phone number")
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(field, _PARSE_REASONS.get(exc.error_type, str(exc))) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneNumber(field, "wrong length for its country")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(field, "not a valid number for its country")
    kind = phonenumbers.number_type(number)
    if kind in _UNDIALABLE:
        raise InvalidPhoneNumber(field, _UNDIALABLE[kind])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_code(raw: str, *, field: str = "default_region") -> str:
    """``raw`` as the upper-case ISO 3166-1 alpha-2 code of a region whose national numbers
    can be read (``gb`` -> ``GB``), or :class:`ValidationError` on ``field``."""
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValidationError(field, "an ISO 3166-1 alpha-2 region code, e.g. GB or US")
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(field, f"{code} is not a region whose phone numbers are known")
    return code


def time_zones_for(e164: str) -> tuple[str, ...]:
    """Every IANA zone the number may ring in; empty when it cannot be told."""
    return zones_of(phonenumbers.parse(e164, None))


def zones_of(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """:func:`time_zones_for` of a number already parsed."""
    zones = number_timezones.time_zones_for_number(number)
    return tuple(sorted(z for z in zones if z != _UNKNOWN_ZONE))
