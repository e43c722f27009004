"""A Twilio-compatible carrier simulator: an HTTP server for load and fault testing.

It accepts the REST calls the Twilio adapter makes, plays each call out in time with the
shared simulation plan, posts signed status and AMD callbacks, and counts concurrency per
caller and campaign. Run it with ``dialer carrier`` or in-process with
:func:`running_carrier`.
"""

from dialer.carrier.carrier import Carrier
from dialer.carrier.config import CarrierConfig, Faults
from dialer.carrier.server import RunningCarrier, running_carrier, serve_carrier, serve_in_thread

__all__ = [
    "Carrier",
    "CarrierConfig",
    "Faults",
    "RunningCarrier",
    "running_carrier",
    "serve_carrier",
    "serve_in_thread",
]
