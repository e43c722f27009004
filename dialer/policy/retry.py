"""The retry policy: a validated value, and when (if ever) the next attempt is due.

Schema (every key optional; ``{}`` is the default policy)::

    {
      "max_attempts": 3,                  # attempts in all, the first included (1..20)
      "backoff": {"kind": "exponential",  # or "fixed" / "list", see below
                  "initial": "5m", "multiplier": 2, "max": "2h"},
      "jitter": 0.1,                      # each delay shortened by up to this fraction
      "retry_on": {"busy": true, "no_answer": true, "failed": true,
                   "voicemail": false, "unknown": true}
    }

Backoff kinds: ``{"kind": "fixed", "delay": "10m"}``; ``{"kind": "exponential", "initial",
"multiplier", "max"}``; ``{"kind": "list", "delays": ["5m", "30m", "2h"]}`` (the last delay
repeats when attempts outnumber it). Durations are seconds (a number) or strings such as
``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1h30m"``. Jitter only ever shortens a delay, so a
delay never exceeds its cap and is never negative.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from dialer.clock import as_utc
from dialer.policy.attempt_state import Outcome

MAX_DELAY_S = 30 * 24 * 3600
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration_s(value: object) -> float:
    """Seconds in ``value``: a number of seconds, or a string like ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not text or _DURATION.sub("", text):
            raise ValueError(f"{value!r} is not a duration like '90s', '5m', '2h' or '1d'")
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION.findall(text))
    else:
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if not 0 <= seconds <= MAX_DELAY_S:
        raise ValueError(f"a duration must lie between 0 and {MAX_DELAY_S} seconds")
    return seconds


DurationS = Annotated[
    float,
    BeforeValidator(parse_duration_s),
    PlainSerializer(lambda v: v, return_type=float),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedBackoff(_Strict):
    kind: Literal["fixed"]
    delay: DurationS = 600.0

    def base_delay_s(self, retry_number: int) -> float:
        return self.delay


class ExponentialBackoff(_Strict):
    kind: Literal["exponential"]
    initial: DurationS = 300.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    max: DurationS = 7200.0

    @model_validator(mode="after")
    def _cap_not_below_initial(self) -> ExponentialBackoff:
        if self.max < self.initial:
            raise ValueError("max must not be below initial")
        return self

    def base_delay_s(self, retry_number: int) -> float:
        # Compare exponents first: multiplier ** n overflows long before it matters.
        if retry_number > 64:
            return self.max
        return float(min(self.max, self.initial * self.multiplier ** (retry_number - 1)))


class ListBackoff(_Strict):
    kind: Literal["list"]
    delays: tuple[DurationS, ...] = Field(min_length=1, max_length=20)

    def base_delay_s(self, retry_number: int) -> float:
        return self.delays[min(retry_number, len(self.delays)) - 1]


Backoff = Annotated[FixedBackoff | ExponentialBackoff | ListBackoff, Field(discriminator="kind")]


class RetryOn(_Strict):
    busy: bool = True
    no_answer: bool = True
    failed: bool = True
    voicemail: bool = False
    unknown: bool = True

    def allows(self, outcome: Outcome) -> bool:
        return bool(getattr(self, outcome.value, False))


class RetryPolicy(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Backoff = Field(default_factory=lambda: ExponentialBackoff(kind="exponential"))
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    retry_on: RetryOn = Field(default_factory=RetryOn)

    def cap_s(self) -> float:
        """The longest delay this policy can produce."""
        match self.backoff:
            case FixedBackoff(delay=delay):
                return delay
            case ExponentialBackoff(max=cap):
                return cap
            case ListBackoff(delays=delays):
                return max(delays)
        raise AssertionError("unreachable")


def _jitter_unit(seed: str, attempts_so_far: int) -> float:
    """A reproducible number in [0, 1) for this seed and attempt."""
    digest = hashlib.sha256(f"{seed}:{attempts_so_far}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def retry_delay_s(policy: RetryPolicy, attempts_so_far: int, *, jitter_seed: str = "") -> float:
    """Delay after the ``attempts_so_far``-th attempt, before the next one, jitter applied."""
    base = policy.backoff.base_delay_s(attempts_so_far)
    return base * (1.0 - policy.jitter * _jitter_unit(jitter_seed, attempts_so_far))


def next_attempt(
    policy: RetryPolicy,
    attempts_so_far: int,
    outcome: Outcome,
    now: datetime,
    *,
    jitter_seed: str = "",
) -> datetime | None:
    """When the next attempt is due after an attempt ended with ``outcome``, or None.

    ``attempts_so_far`` counts the attempt that just ended. ``jitter_seed`` (the recipient's
    id, say) makes jitter spread recipients apart yet stay reproducible.
    """
    if attempts_so_far < 1:
        raise ValueError("attempts_so_far counts the attempt that just ended")
    if outcome is Outcome.HUMAN or outcome is Outcome.CANCELED:
        return None
    if attempts_so_far >= policy.max_attempts or not policy.retry_on.allows(outcome):
        return None
    delay_s = retry_delay_s(policy, attempts_so_far, jitter_seed=jitter_seed)
    return as_utc(now) + timedelta(seconds=delay_s)
