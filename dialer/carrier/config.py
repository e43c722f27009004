"""How the carrier simulator behaves: credentials, callee profile, pacing and injected faults.

Probabilities are in 0..1 and drawn per request or per callback from the carrier's seeded
generator. Times are in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from dialer.errors import ValidationError
from dialer.telephony.simulator.call import SIMULATED_ACCOUNT_SID
from dialer.telephony.simulator.plan import SimulationProfile

DEFAULT_AUTH_TOKEN = "carrier-auth-token"


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour to inject, each as a probability (``slow_delay_s`` is how slow)."""

    duplicate_p: float = 0.0  # a callback is sent twice (Twilio retries webhooks)
    reorder_p: float = 0.0  # a callback is held back and sent after the call's next one
    drop_p: float = 0.0  # a callback is never sent
    drop_ended_p: float = 0.0  # a terminal status callback is never sent (on top of drop_p)
    http_429_p: float = 0.0  # a REST request is refused with 429 (code 20429), nothing done
    http_5xx_p: float = 0.0  # a REST request fails with 500 (code 20500), nothing done
    slow_p: float = 0.0  # a REST response is delayed, after the request has taken effect
    slow_delay_s: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ValidationError(f.name, "must be a probability between 0 and 1")
        if self.slow_delay_s < 0:
            raise ValidationError("slow_delay_s", "must not be negative")


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    """``time_scale`` is wall seconds per simulated second (0.01 rings 15 s in 0.15 s);
    ``cps`` is calls leaving the queue per wall-clock second, None for no limit."""

    account_sid: str = SIMULATED_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    seed: int | None = None
    profile: SimulationProfile = field(default_factory=SimulationProfile)
    time_scale: float = 1.0
    cps: float | None = None
    callback_timeout_s: float = 5.0
    faults: Faults = field(default_factory=Faults)
    #: E.164 numbers the account owns (IncomingPhoneNumbers); None = any valid number.
    numbers: frozenset[str] | None = None
    #: E.164 numbers verified as caller IDs (OutgoingCallerIds).
    caller_ids: frozenset[str] = frozenset()
    #: Keys the callee at a number presses during the answer's ``<Gather>`` (number -> key),
    #: posted as ``Digits`` to its action; a ``<Hangup/>`` in the answer ends the call.
    keys: Mapping[str, str] = field(default_factory=dict)

    def calling_numbers(self) -> frozenset[str] | None:
        """The numbers calls may come from; None = any valid number."""
        return None if self.numbers is None else self.numbers | self.caller_ids

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValidationError("time_scale", "must be positive")
        if self.cps is not None and not self.cps > 0:
            raise ValidationError("cps", "must be positive")
        if not self.callback_timeout_s > 0:
            raise ValidationError("callback_timeout_s", "must be positive")
        for key in self.keys.values():
            if len(key) != 1 or key not in "0123456789*#":
                raise ValidationError("keys", f"a key is one of 0-9, * or #, not {key!r}")
        if not self.account_sid or not self.auth_token:
            raise ValidationError("account_sid", "credentials must not be empty")
