"""Telephony providers behind one port: Twilio, and the in-process simulator.

Pure modules (base, events, simulation) need no SDK; :mod:`dialer.telephony.twilio` loads the
``twilio`` SDK only when a :class:`~dialer.telephony.twilio.TwilioProvider` is built.
"""

from dialer.telephony.base import (
    CallInfo,
    CallRequest,
    CallStatus,
    PlacedCall,
    TelephonyProvider,
)
from dialer.telephony.events import (
    EventKind,
    EventSink,
    ProviderEvent,
    attempt_status_for,
    outcome_for,
    parse_event,
)
from dialer.telephony.simulator import SimulatedProvider

__all__ = [
    "CallInfo",
    "CallRequest",
    "CallStatus",
    "EventKind",
    "EventSink",
    "PlacedCall",
    "ProviderEvent",
    "SimulatedProvider",
    "TelephonyProvider",
    "attempt_status_for",
    "outcome_for",
    "parse_event",
]
