"""The JSON the carrier answers with, shaped like Twilio's 2010-04-01 REST API."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from dialer.carrier.params import API_VERSION
from dialer.telephony.simulator.call import SimulatedCall
from dialer.telephony.twilio.callbacks import format_timestamp

API_PREFIX = f"/{API_VERSION}"


class TwilioApiError(Exception):
    """A request the carrier refuses, answered with Twilio's error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def not_found(path: str) -> TwilioApiError:
    return TwilioApiError(404, 20404, f"The requested resource {path} was not found")


def calls_uri(account_sid: str) -> str:
    return f"{API_PREFIX}/Accounts/{account_sid}/Calls.json"


def call_resource(call: SimulatedCall, updated_at: datetime) -> dict[str, Any]:
    """The Call resource of ``call``; times in RFC 2822, empty ones null, as Twilio does."""
    uri = f"{API_PREFIX}/Accounts/{call.account_sid}/Calls/{call.sid}.json"
    return {
        "sid": call.sid,
        "account_sid": call.account_sid,
        "parent_call_sid": None,
        "date_created": format_timestamp(call.created_at),
        "date_updated": format_timestamp(updated_at),
        "to": call.to,
        "to_formatted": call.to,
        "from": call.from_,
        "from_formatted": call.from_,
        "phone_number_sid": None,
        "status": call.status.value,
        "start_time": _time(call.started_at),
        "end_time": _time(call.ended_at),
        "duration": None if call.duration_s is None else str(call.duration_s),
        "price": None,
        "price_unit": "USD",
        "direction": "outbound-api",
        "answered_by": call.answered_by,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": uri,
        "subresource_uris": {},
    }


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def number_resource(account_sid: str, kind: str, number: str) -> dict[str, Any]:
    """An IncomingPhoneNumber or OutgoingCallerId record of ``number`` (``kind``: the list's
    name in the URL), with the fields a client reads."""
    sid = "PN" + hashlib.sha256(f"{kind}:{number}".encode()).hexdigest()[:32]  # stable
    return {
        "sid": sid,
        "account_sid": account_sid,
        "friendly_name": number,
        "phone_number": number,
        "uri": f"{API_PREFIX}/Accounts/{account_sid}/{kind}/{sid}.json",
    }
