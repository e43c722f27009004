"""Telephony providers behind one port, both ways: placing calls, and taking in their events.

The port: :mod:`~dialer.telephony.base` (outbound: the adapter protocol and its values) and
:mod:`~dialer.telephony.events` (inbound: what a provider reports, as values). Each provider is
a package of its own (:mod:`~dialer.telephony.providers`): :mod:`~dialer.telephony.twilio` and
:mod:`~dialer.telephony.simulator`. Pure modules need no SDK; the ``twilio`` SDK loads only when
a Twilio adapter is built or TwiML rendered.
"""

from dialer.telephony.base import (
    CallContext,
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
)

__all__ = [
    "CallContext",
    "CallInfo",
    "CallRequest",
    "CallStatus",
    "EventKind",
    "EventSink",
    "PlacedCall",
    "ProviderEvent",
    "TelephonyProvider",
    "attempt_status_for",
    "outcome_for",
]
