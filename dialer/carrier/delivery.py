"""Delivering a call's webhooks over HTTP: signed like Twilio's, with faults when asked.

Each request carries ``X-Twilio-Signature`` computed with the account's auth token over the
exact URL and params sent. A request that fails (no answer, or a 5xx) is tried once more, as
Twilio does by default; every request has a timeout.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import httpx

from dialer.carrier.config import Faults
from dialer.carrier.stats import CarrierStats
from dialer.telephony.twilio.signature import SIGNATURE_HEADER, sign

USER_AGENT = "TwilioProxy/1.1"


class WebhookSender:
    """Signs and posts one webhook, with one retry. Shared by every call of a carrier."""

    def __init__(self, client: httpx.AsyncClient, auth_token: str, stats: CarrierStats) -> None:
        self._client = client
        self._auth_token = auth_token
        self._stats = stats

    async def post(self, url: str, params: Mapping[str, str]) -> bool:
        """POST ``params`` form-encoded to ``url``; True once it got a non-5xx answer."""
        headers = {SIGNATURE_HEADER: sign(url, params, self._auth_token), "User-Agent": USER_AGENT}
        for _ in range(2):
            try:
                response = await self._client.post(url, data=dict(params), headers=headers)
            except httpx.HTTPError:
                continue
            if response.status_code < 500:
                self._stats.webhook("delivered")
                return True
        self._stats.webhook("failed")
        return False

    async def fetch(self, url: str, params: Mapping[str, str]) -> str | None:
        """POST as :meth:`post` does, and return the answer's body (None: no answer)."""
        headers = {SIGNATURE_HEADER: sign(url, params, self._auth_token), "User-Agent": USER_AGENT}
        for _ in range(2):
            try:
                response = await self._client.post(url, data=dict(params), headers=headers)
            except httpx.HTTPError:
                continue
            if response.status_code < 500:
                self._stats.webhook("delivered")
                return response.text
        self._stats.webhook("failed")
        return None


class CallbackStream:
    """The callbacks of one call, in order, except where the faults say otherwise.

    Reordering holds a callback back and sends it right after the call's next one (or when
    the call's callbacks are flushed), as a late webhook would arrive.
    """

    def __init__(
        self,
        sender: WebhookSender,
        faults: Callable[[], Faults],
        rng: random.Random,
        stats: CarrierStats,
    ) -> None:
        self._sender = sender
        self._faults = faults
        self._rng = rng
        self._stats = stats
        self._held: tuple[str, Mapping[str, str]] | None = None

    async def send(self, url: str, params: Mapping[str, str], *, ends: bool = False) -> None:
        """Send one callback; ``ends``: it reports the call's end (``drop_ended_p`` applies)."""
        faults = self._faults()
        if self._rng.random() < faults.drop_p:
            self._stats.fault("dropped")
            return
        if ends and faults.drop_ended_p and self._rng.random() < faults.drop_ended_p:
            self._stats.fault("dropped_ended")
            return
        if self._held is None and self._rng.random() < faults.reorder_p:
            self._stats.fault("reordered")
            self._held = (url, params)
            return
        await self._post(url, params, faults)
        await self.flush()

    async def flush(self) -> None:
        """Send the callback held back for reordering, if any."""
        if self._held is not None:
            url, params = self._held
            self._held = None
            await self._post(url, params, self._faults())

    async def _post(self, url: str, params: Mapping[str, str], faults: Faults) -> None:
        await self._sender.post(url, params)
        if self._rng.random() < faults.duplicate_p:
            self._stats.fault("duplicated")
            await self._sender.post(url, params)
