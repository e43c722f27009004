"""The Twilio adapter of the provider port, on the official ``twilio`` SDK (loaded lazily).

The REST base URL is configurable (``DIALER_TWILIO_BASE_URL``) so the same adapter drives
the carrier simulator of :mod:`dialer.carrier`, or any Twilio-compatible endpoint. Every
request has an HTTP timeout; errors become the provider errors of :mod:`dialer.errors` by
what they prove about the call, see :mod:`dialer.telephony.twilio.errors`. The webhook URLs
of each call carry our attempt id (:mod:`dialer.telephony.twilio.urls`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dialer.errors import ConfigurationError, TerminalProviderError
from dialer.settings import TWILIO_API_URL, Settings
from dialer.telephony.base import (
    LIVE_STATUSES,
    CallerIdStatus,
    CallInfo,
    CallRequest,
    CallStatus,
    LiveCalls,
    PlacedCall,
)
from dialer.telephony.twilio.errors import provider_error
from dialer.telephony.twilio.urls import WebhookUrls

#: Twilio refuses machine detection timeouts above this many seconds (error 21234).
MAX_TWILIO_MACHINE_DETECTION_TIMEOUT_S = 59
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Twilio's answer when hanging up a call that has already ended.
_ALREADY_ENDED_CODE = "21220"
#: Records one caller-id lookup lists: Twilio's ``PhoneNumber`` filter also matches numbers
#: that merely contain the digits, so the exact one is picked from a few.
CALLER_ID_LOOKUP_LIMIT = 20
#: Calls per page when listing live calls: the most Twilio's Calls list answers with.
LIVE_PAGE_SIZE = 1000
_T = TypeVar("_T")


class TwilioProvider:
    """Places calls through Twilio's REST API (or a compatible one at ``base_url``).

    Use one per thread or process: the SDK's HTTP session is not documented as thread-safe.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        webhooks: WebhookUrls,
        base_url: str = TWILIO_API_URL,
        http_timeout_s: float = 10.0,
        find_limit: int = 100,
    ) -> None:
        """``webhooks``: where Twilio reaches us about each call; ``http_timeout_s`` bounds
        connecting and each read; ``find_limit`` caps the calls one :meth:`find_calls` query
        lists."""
        try:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client
        except ImportError as exc:  # pragma: no cover - twilio is a declared dependency
            raise ConfigurationError(
                "the twilio provider needs the 'twilio' package: pip install 'twilio>=9'"
            ) from exc
        if not http_timeout_s > 0:
            raise ConfigurationError("the Twilio HTTP timeout must be positive")
        self._client: Any = Client(
            account_sid, auth_token, http_client=TwilioHttpClient(timeout=http_timeout_s)
        )
        self._client.api.base_url = base_url.rstrip("/")
        if urlsplit(base_url).hostname != urlsplit(TWILIO_API_URL).hostname:
            # TWILIO_EDGE / TWILIO_REGION rewrite hostnames into *.twilio.com: not here.
            self._client.edge = None
            self._client.region = None
        self._find_limit = find_limit
        self._webhooks = webhooks

    @classmethod
    def from_settings(cls, settings: Settings, *, http_timeout_s: float = 10.0) -> TwilioProvider:
        if not settings.twilio_account_sid or settings.twilio_auth_token is None:
            raise ConfigurationError(
                "DIALER_TWILIO_ACCOUNT_SID and DIALER_TWILIO_AUTH_TOKEN must be set"
            )
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            webhooks=WebhookUrls(str(settings.public_base_url)),
            base_url=str(settings.twilio_base_url),
            http_timeout_s=http_timeout_s,
        )

    def place_call(self, request: CallRequest) -> PlacedCall:
        answer, status, amd = self._webhooks.for_attempt(request.attempt_id, request.campaign_id)
        call = _calling(
            lambda: self._client.calls.create(
                to=request.to,
                from_=request.from_,
                url=answer,
                status_callback=status,
                status_callback_event=list(STATUS_CALLBACK_EVENTS),
                status_callback_method="POST",
                timeout=request.ring_timeout_s,
                time_limit=request.time_limit_s,
                machine_detection=request.machine_detection,
                machine_detection_timeout=min(
                    request.machine_detection_timeout_s, MAX_TWILIO_MACHINE_DETECTION_TIMEOUT_S
                ),
                async_amd="true",
                async_amd_status_callback=amd,
                async_amd_status_callback_method="POST",
            ),
            may_have_created=True,
        )
        return PlacedCall(str(call.sid), _status(call.status))

    def hang_up(self, provider_call_id: str) -> CallInfo | None:
        """``Status=completed`` ends the call in any state; ``canceled`` would leave an
        answered call up. Twilio answers with the call resource, ended."""
        try:
            call = _calling(lambda: self._client.calls(provider_call_id).update(status="completed"))
        except TerminalProviderError as exc:
            if exc.code != _ALREADY_ENDED_CODE:
                raise
            return None
        return _info(call)

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        session = getattr(self._client.http_client, "session", None)
        if session is not None:
            session.close()

    def fetch(self, provider_call_id: str) -> CallInfo:
        return _info(_calling(lambda: self._client.calls(provider_call_id).fetch()))

    def live_calls(self) -> LiveCalls:
        """One list per live status (Twilio filters on one), :data:`LIVE_PAGE_SIZE` calls a
        page, in the order calls go through them: a call that moves on while we list is met
        again in a later list, or missing (then fetched: a cost, never a wrong answer)."""
        calls = self._client.calls
        ids: set[str] = set()
        requests = 0
        for status in LIVE_STATUSES:
            page = _calling(
                functools.partial(calls.page, status=status.value, page_size=LIVE_PAGE_SIZE)
            )
            while page is not None:
                requests += 1
                ids.update(str(call.sid) for call in page)
                page = _calling(page.next_page)
        return LiveCalls(frozenset(ids), requests)

    def caller_id_status(self, number: str) -> CallerIdStatus:
        """The account's IncomingPhoneNumbers, then its verified OutgoingCallerIds, each
        filtered by ``PhoneNumber`` (one request each; the second only when needed)."""
        lists = (
            (CallerIdStatus.OWNED, self._client.incoming_phone_numbers),
            (CallerIdStatus.VERIFIED, self._client.outgoing_caller_ids),
        )
        for status, resource in lists:
            found = _calling(
                functools.partial(resource.list, phone_number=number, limit=CALLER_ID_LOOKUP_LIMIT)
            )
            if any(str(record.phone_number) == number for record in found):
                return status
        return CallerIdStatus.UNKNOWN

    def find_calls(self, to: str, from_: str, since: datetime) -> list[CallInfo]:
        """Two queries: calls started since ``since``, and calls still queued, which have no
        start time yet; both filtered again here on the creation time."""
        since = since.astimezone(UTC)
        calls = self._client.calls
        started = _calling(
            lambda: calls.list(to=to, from_=from_, start_time_after=since, limit=self._find_limit)
        )
        queued = _calling(
            lambda: calls.list(to=to, from_=from_, status="queued", limit=self._find_limit)
        )
        found = {
            info.provider_call_id: info for info in map(_info, itertools.chain(started, queued))
        }
        return sorted(
            (
                info
                for info in found.values()
                if info.created_at is None or info.created_at >= since
            ),
            key=lambda info: info.created_at or since,
        )


def _calling(request: Callable[[], _T], *, may_have_created: bool = False) -> _T:
    """Run one SDK request, turning its failures into provider errors."""
    try:
        return request()
    except Exception as exc:
        error = provider_error(exc, may_have_created=may_have_created)
        if error is None:
            raise
        raise error from exc


def _status(value: object) -> CallStatus:
    return CallStatus(str(value))


def _info(call: Any) -> CallInfo:
    duration = call.duration
    return CallInfo(
        provider_call_id=str(call.sid),
        status=_status(call.status),
        to=str(call.to),
        from_=str(call._from),
        answered_by=call.answered_by or None,
        duration_s=int(duration) if duration not in (None, "") else None,
        created_at=call.date_created,
        started_at=call.start_time,
        ended_at=call.end_time,
    )
