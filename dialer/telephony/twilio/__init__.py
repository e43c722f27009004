"""The Twilio provider (and any Twilio-compatible carrier at ``DIALER_TWILIO_BASE_URL``).

Everything Twilio-specific is here: the outbound adapter on the official SDK (loaded lazily,
so nothing else needs it), what a failed request proves about the call, the callbacks' form
params, their signatures, the TwiML an answered call plays, and the webhook routes the API
mounts under ``/webhooks/twilio``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from dialer.settings import Settings
from dialer.telephony.base import TelephonyProvider
from dialer.telephony.events import EventSink
from dialer.telephony.twilio.urls import NAME

if TYPE_CHECKING:
    from fastapi import APIRouter

    from dialer.telephony.providers import Inbound


class _Twilio:
    reports_in_process = False
    name = NAME

    def build(
        self, settings: Settings, events: EventSink, clock: Callable[[], datetime]
    ) -> TelephonyProvider:
        """The REST adapter (``DIALER_TWILIO_*``); its events come by webhook, not ``events``."""
        from dialer.telephony.twilio.adapter import TwilioProvider

        return TwilioProvider.from_settings(settings)

    def pace_account(self, settings: Settings) -> str:
        return f"{self.name}:{settings.twilio_account_sid}"

    def webhooks(self, settings: Settings, inbound: Inbound) -> APIRouter | None:
        from dialer.telephony.twilio.routes import router

        return router(settings, inbound)


PACKAGE = _Twilio()

__all__ = ["PACKAGE"]
