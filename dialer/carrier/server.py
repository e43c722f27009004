"""Serving the carrier: blocking for the command line, or on a background thread for tests.

The in-process server binds 127.0.0.1 on a free port by default and stops, cancelling every
call's playback, when its ``with`` block ends.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from dialer.carrier.app import create_app
from dialer.carrier.carrier import Carrier
from dialer.carrier.config import CarrierConfig

LOCALHOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RunningCarrier:
    """A carrier serving at ``base_url``: use it as the Twilio REST base URL."""

    base_url: str
    carrier: Carrier

    @property
    def account_sid(self) -> str:
        return self.carrier.config.account_sid

    @property
    def auth_token(self) -> str:
        return self.carrier.config.auth_token

    def stats(self) -> dict[str, Any]:
        """What ``GET /__carrier__/stats`` answers."""
        return self.carrier.stats.snapshot()


def serve_carrier(config: CarrierConfig, host: str = LOCALHOST, port: int = 8765) -> None:
    """Serve a carrier until interrupted (Ctrl-C / SIGTERM)."""
    uvicorn.run(create_app(Carrier(config)), host=host, port=port, log_level="info")


@contextmanager
def running_carrier(config: CarrierConfig | None = None, **fields: Any) -> Iterator[RunningCarrier]:
    """A carrier on a background thread; ``fields`` override those of ``config``.

    >>> with running_carrier(seed=7, time_scale=0.01) as running:  # doctest: +SKIP
    ...     provider = TwilioProvider(running.account_sid, running.auth_token,
    ...                               base_url=running.base_url)
    """
    config = config or CarrierConfig()
    if fields:
        config = dataclasses.replace(config, **fields)
    carrier = Carrier(config)
    with serve_in_thread(create_app(carrier)) as base_url:
        yield RunningCarrier(base_url, carrier)


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, host: str = LOCALHOST, port: int = 0, startup_timeout_s: float = 10.0
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a background thread; yields its base URL.

    ``port`` 0 takes a free one. Leaving the block asks the server to exit, runs the app's
    lifespan shutdown and waits for the thread.
    """
    # IPPROTO_TCP spelled out: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"serve-{bound_port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {host}:{bound_port} did not start")
            time.sleep(0.005)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout_s)
        sock.close()
