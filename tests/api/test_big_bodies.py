"""A real ``dialer api`` process sent bodies of hundreds of MiB: each is answered without
being read (or is cut off at its route's limit, or spooled to disk), and the process's
memory stays where it was.

The bodies come from generators (this test never holds one), chunked; a server that answers
early closes the connection, and the client stops sending.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dialer.api import limits
from dialer.db.engine import make_engine
from dialer.db.migrate import upgrade
from tests.api.conftest import headers_for
from tests.e2e.fleet import LOCALHOST, free_port

#: Runs the dialer's processes.
pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
BIG = 400 * MIB
#: How far the server's resident memory may move while it answers one big body.
RSS_SLACK_KIB = 50 * 1024
BOUNDARY = "b0undary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
WEBHOOK = "/webhooks/twilio/1/status"


@dataclass
class Api:
    base: str
    credentials: dict[str, str]
    process: subprocess.Popen[bytes]

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """``dialer api`` on embedded SQLite, with Twilio's webhooks armed."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's memory from /proc")
    home = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{home / 'dialer.db'}"
    upgrade(url)
    engine = make_engine(url)
    credentials = headers_for(engine, "ops")
    engine.dispose()
    env = {**os.environ, "DIALER_DATABASE_URL": url, "DIALER_TWILIO_AUTH_TOKEN": "webhook-secret"}
    env.pop("DIALER_REDIS_URL", None)
    port = free_port()
    log_path = home / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dialer", "api", "--host", LOCALHOST, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    api = Api(f"http://{LOCALHOST}:{port}", credentials, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # Authenticated, so that whatever the first request builds is built.
                if httpx.get(f"{api.base}/campaign", headers=api.credentials).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dialer api did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield api
    finally:
        process.terminate()
        process.wait(timeout=20)


def _stream(size: int, head: bytes = b"", tail: bytes = b"") -> Iterator[bytes]:
    block = b"x" * MIB
    yield head
    for _ in range(size // MIB):
        yield block
    yield tail


def _file_part(name: str, filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        "\r\nContent-Type: text/csv\r\n\r\n"
    ).encode()


NAME_PART = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nBig\r\n'.encode()
END = f"\r\n--{BOUNDARY}--\r\n".encode()


def _upload(size: int) -> Iterator[bytes]:
    """A list upload whose file is ``size`` bytes."""
    return _stream(size, NAME_PART + _file_part("file", "big.csv"), END)


def _post(api: Api, path: str, headers: dict[str, str], body: Iterable[bytes]) -> httpx.Response:
    """POST ``body``, asserting the server's memory stays within the slack while it answers."""
    before = api.rss_kib()
    response = httpx.post(api.base + path, headers=headers, content=body, timeout=120)
    after = api.rss_kib()
    assert after - before < RSS_SLACK_KIB, f"{path}: RSS went from {before} KiB to {after} KiB"
    return response


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/campaign", MULTIPART, 401),
        ("/recipient_list", MULTIPART, 401),
        (WEBHOOK, FORM, 403),
        ("/no/such/route", MULTIPART, 404),
    ],
)
def test_an_unauthenticated_400_mib_body_is_answered_unread(
    api: Api, path: str, headers: dict[str, str], status: int
) -> None:
    response = _post(api, path, headers, _upload(BIG))
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert response.headers["connection"] == "close"


def test_a_forged_webhook_of_400_mib_is_cut_off_at_64_kib(api: Api) -> None:
    headers = {**FORM, "x-twilio-signature": "forged"}
    response = _post(api, WEBHOOK, headers, _stream(BIG, b"CallSid="))
    assert response.status_code == 422
    reason = f"larger than {limits.MAX_WEBHOOK_BYTES} bytes"
    assert response.json()["detail"] == [{"field": "body", "reason": reason}]


def test_an_authenticated_json_body_of_400_mib_is_cut_off_at_10_mib(api: Api) -> None:
    headers = {**api.credentials, "content-type": "application/json"}
    response = _post(api, "/campaign", headers, _stream(BIG, b'{"name": "', b'"}'))
    assert response.status_code == 422
    reason = f"larger than {limits.MAX_JSON_BYTES} bytes"
    assert response.json()["detail"] == [{"field": "body", "reason": reason}]
    assert response.headers["connection"] == "close"


def test_an_authenticated_upload_of_400_mib_goes_to_disk_not_memory(api: Api) -> None:
    """The file is spooled whole; a second file after it is refused as it arrives."""
    headers = {**api.credentials, **MULTIPART}
    first = NAME_PART + _file_part("file", "big.csv")
    body = _stream(BIG, first, b"\r\n" + _file_part("more", "more.csv"))
    response = _post(api, "/recipient_list", headers, body)
    assert response.status_code == 422, response.text
    assert "Too many files" in response.json()["message"]


def test_an_authenticated_text_field_of_400_mib_is_refused_past_16_kib(api: Api) -> None:
    headers = {**api.credentials, **MULTIPART}
    field = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'
    response = _post(api, "/recipient_list", headers, _stream(BIG, field.encode()))
    assert response.status_code == 422
    assert "maximum size" in response.json()["message"]
    assert response.headers["connection"] == "close"
