"""A Redis that accepts connections and never answers fails requests; it never hangs them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.settings import Settings
from tests.api.conftest import ManualClock, campaign_body, headers_for


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """The URL of a server on 127.0.0.1 that accepts connections, reads, and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # read into the kernel's buffer, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.timeout(60)  # a hang fails here, not after the suite's two minutes
def test_start_answers_and_readiness_says_redis_is_down(
    engine: Engine, clock: ManualClock, silent_redis: str
) -> None:
    settings = Settings(
        database_url=str(engine.url),
        redis_url=silent_redis,
        redis_connect_timeout_s=0.5,
        redis_timeout_s=0.5,
    )
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers_for(engine, "alice"))
        body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
        cid = client.post("/campaign", json=body).json()["id"]

        started = client.post(f"/campaign/{cid}/start")
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "running", "the scheduler's tick dispatches it"

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["redis"].startswith("error: ")
