"""The simulator provider: simulated callees in process, no network, no credentials.

The embedded default, the demo's provider and most tests'. Its calls play out from a seeded
plan (:mod:`~dialer.telephony.simulator.plan`); its events go to an in-process sink instead of
webhooks (:mod:`~dialer.telephony.simulator.channel`). The carrier server (:mod:`dialer.carrier`)
plays the same calls out over HTTP as a Twilio-compatible carrier.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from dialer.settings import Settings
from dialer.telephony.events import EventSink
from dialer.telephony.simulator.provider import SimulatedProvider

if TYPE_CHECKING:
    from fastapi import APIRouter

    from dialer.telephony.providers import Inbound


class _Simulator:
    reports_in_process = True
    name = "simulator"

    def build(
        self, settings: Settings, events: EventSink, clock: Callable[[], datetime]
    ) -> SimulatedProvider:
        """A simulator delivering its events in real time (``DIALER_SIMULATOR_*``)."""
        from dialer.telephony.simulator.plan import parse_profile

        profile = parse_profile(settings.simulator_profile) if settings.simulator_profile else None
        return SimulatedProvider.realtime(
            events,
            profile=profile,
            seed=settings.simulator_seed,
            time_scale=settings.simulator_time_scale,
            lose_ended_p=settings.simulator_lose_ended_p,
            numbers=(
                frozenset(settings.simulator_numbers.split(","))
                if settings.simulator_numbers
                else None
            ),
        )

    def pace_account(self, settings: Settings) -> str:
        return self.name

    def webhooks(self, settings: Settings, inbound: Inbound) -> APIRouter | None:
        return None


PACKAGE = _Simulator()

__all__ = ["PACKAGE", "SimulatedProvider"]
