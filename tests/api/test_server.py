"""A real ``dialer api`` process on a free port, driven over TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.api.conftest import campaign_body

#: Runs the dialer's processes.
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dialer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dialer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.fixture
def server(engine: Engine) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        **os.environ,
        "DIALER_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }
    env.pop("DIALER_REDIS_URL", None)
    key = _dialer("apikey", "create", "--user-id", "ops", env=env).stdout.strip()
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dialer", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dialer api did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield base, {"Authorization": f"Bearer {key}", "X-User-ID": "ops"}
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_real_server_serves_the_api(server: tuple[str, dict[str, str]]) -> None:
    base, headers = server
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        # The embedded simulator's account owns any valid number it is asked about.
        number = client.post("/phone_number", json={"number": "(415) 555-0100", "name": "main"})
        assert number.status_code == 201, number.text
        assert number.json()["number"] == "+14155550100"
        created = client.post(
            "/campaign", json=campaign_body(recipients=[{"phone_number": "+14155552671"}])
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        assert client.post(f"/campaign/{cid}/start").json()["status"] == "running"
        assert client.get(f"/campaign/{cid}").json()["counts"]["total"] == 1
        assert client.get("/readyz").json()["ready"] is True
        assert "paths" in client.get("/openapi.json").json()
        assert client.get("/campaign", headers={"Authorization": "Bearer wrong"}).status_code == 401
