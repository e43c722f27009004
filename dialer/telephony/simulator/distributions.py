"""Random durations for simulated calls, in seconds: fixed, uniform and exponential.

Written as text on the command line and in settings: ``fixed:3``, ``uniform:2,8``,
``exponential:45`` (the mean).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from dialer.errors import ValidationError


class Distribution(Protocol):
    def sample(self, rng: random.Random) -> float:
        """One duration in seconds, never negative."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    value_s: float

    def __post_init__(self) -> None:
        _non_negative("value_s", self.value_s)

    def sample(self, rng: random.Random) -> float:
        return self.value_s

    def __str__(self) -> str:
        return f"fixed:{self.value_s:g}"


@dataclass(frozen=True, slots=True)
class Uniform:
    low_s: float
    high_s: float

    def __post_init__(self) -> None:
        _non_negative("low_s", self.low_s)
        if self.high_s < self.low_s:
            raise ValidationError("high_s", "must not be below low_s")

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low_s, self.high_s)

    def __str__(self) -> str:
        return f"uniform:{self.low_s:g},{self.high_s:g}"


@dataclass(frozen=True, slots=True)
class Exponential:
    mean_s: float

    def __post_init__(self) -> None:
        if not self.mean_s > 0:
            raise ValidationError("mean_s", "must be positive")

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean_s)

    def __str__(self) -> str:
        return f"exponential:{self.mean_s:g}"


def parse_distribution(text: str) -> Distribution:
    """``fixed:S``, ``uniform:LOW,HIGH`` or ``exponential:MEAN`` (``exp:`` for short)."""
    kind, _, args = text.strip().partition(":")
    try:
        numbers = [float(part) for part in args.split(",")] if args else []
    except ValueError:
        raise ValidationError("distribution", f"not numbers: {args!r}") from None
    shapes: dict[str, tuple[int, type[Fixed] | type[Uniform] | type[Exponential]]] = {
        "fixed": (1, Fixed),
        "uniform": (2, Uniform),
        "exponential": (1, Exponential),
        "exp": (1, Exponential),
    }
    if kind not in shapes:
        raise ValidationError("distribution", f"unknown kind {kind!r}: use fixed, uniform, exp")
    arity, shape = shapes[kind]
    if len(numbers) != arity:
        raise ValidationError("distribution", f"{kind} takes {arity} number(s), got {text!r}")
    return shape(*numbers)


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValidationError(name, "must not be negative")
