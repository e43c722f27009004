"""Fixtures for tests that talk to a carrier over HTTP (imported by the conftests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from dialer.carrier import CarrierConfig, RunningCarrier, running_carrier
from tests.carrier.support import Receiver, receiving

#: Simulated seconds last 10 ms: a 15 s ring takes 0.15 s.
FAST = 0.01
StartCarrier = Callable[..., RunningCarrier]


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """One webhook receiver for the session; tests tell their calls apart by attempt id."""
    with receiving(CarrierConfig().auth_token) as receiver:
        yield receiver


@pytest.fixture
def start_carrier() -> Iterator[StartCarrier]:
    """Start carriers on 127.0.0.1 (fast time, seeded); all stop when the test ends."""
    with ExitStack() as stack:

        def start(**fields: Any) -> RunningCarrier:
            fields.setdefault("time_scale", FAST)
            fields.setdefault("seed", 1)
            return stack.enter_context(running_carrier(**fields))

        yield start
