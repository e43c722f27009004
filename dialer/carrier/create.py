"""Reading a ``POST .../Calls.json`` form the way Twilio does, refusing what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from dialer.carrier.resources import TwilioApiError
from dialer.telephony.simulator.plan import number_problem

#: Events sent when ``StatusCallbackEvent`` is absent: Twilio then reports only the end.
DEFAULT_EVENTS = frozenset({"completed"})
KNOWN_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MACHINE_DETECTION_TIMEOUT_RANGE_S = (3, 59)
DEFAULT_TIME_LIMIT_S = 4 * 60 * 60


@dataclass(frozen=True, slots=True)
class CreateCall:
    to: str
    from_: str
    url: str | None
    status_callback: str | None
    status_callback_events: frozenset[str]
    timeout_s: int
    time_limit_s: int
    machine_detection: str | None
    machine_detection_timeout_s: int
    async_amd: bool
    async_amd_status_callback: str | None
    params: dict[str, list[str]]  # every field as received, for inspection

    @property
    def campaign(self) -> str:
        """The ``campaign`` query parameter of the status callback URL, else the caller."""
        if self.status_callback:
            values = parse_qs(urlsplit(self.status_callback).query).get("campaign")
            if values and values[0]:
                return values[0]
        return self.from_


def parse_create(
    getlist: Callable[[str], list[str]],
    names: list[str],
    calling_numbers: frozenset[str] | None = None,
) -> CreateCall:
    """The create request in the form read by ``getlist``; TwilioApiError if Twilio would 400
    (``calling_numbers``: the ``From`` numbers the account may use; None = any)."""

    def get(name: str) -> str | None:
        values = getlist(name)
        return values[-1] if values else None

    to, from_ = get("To") or "", get("From") or ""
    problem = number_problem(to, from_, calling_numbers)
    if problem is not None:
        raise TwilioApiError(400, *problem)
    url = get("Url")
    if not (url or get("Twiml") or get("ApplicationSid")):
        raise TwilioApiError(400, 21205, "Url parameter is required")
    timeout_s = _int(get("Timeout"), 60)
    if timeout_s is None or not 1 <= timeout_s <= 600:
        raise TwilioApiError(400, 21208, f"Invalid Timeout: {get('Timeout')}")
    detection = get("MachineDetection")
    if detection is not None and detection not in ("Enable", "DetectMessageEnd"):
        raise TwilioApiError(400, 21234, f"Invalid MachineDetection: {detection}")
    detection_timeout_s = _int(get("MachineDetectionTimeout"), 30)
    low, high = MACHINE_DETECTION_TIMEOUT_RANGE_S
    if detection_timeout_s is None or not low <= detection_timeout_s <= high:
        raise TwilioApiError(
            400, 21234, f"Invalid MachineDetectionTimeout: {get('MachineDetectionTimeout')}"
        )
    events = frozenset(e for value in getlist("StatusCallbackEvent") for e in value.split())
    return CreateCall(
        to=to,
        from_=from_,
        url=url,
        status_callback=get("StatusCallback"),
        status_callback_events=(events & KNOWN_EVENTS) or DEFAULT_EVENTS,
        timeout_s=timeout_s,
        time_limit_s=_int(get("TimeLimit"), DEFAULT_TIME_LIMIT_S) or DEFAULT_TIME_LIMIT_S,
        machine_detection=detection,
        machine_detection_timeout_s=detection_timeout_s,
        async_amd=(get("AsyncAmd") or "").lower() == "true",
        async_amd_status_callback=get("AsyncAmdStatusCallback"),
        params={name: getlist(name) for name in names},
    )


def _int(text: str | None, default: int) -> int | None:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        return None
