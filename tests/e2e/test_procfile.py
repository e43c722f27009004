"""The Procfile as an operator runs it: ``honcho start release``, then ``honcho start web
worker scheduler``, on a scratch PostgreSQL database and a Redis database of its own, dialing a
campaign through the simulator (sped up) to completion; SIGTERM to honcho then stops every
process it started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.conftest import scratch_database_url
from tests.e2e.fleet import (
    LOCALHOST,
    ROOT,
    api_client,
    base_env,
    claim_redis_db,
    free_port,
    json_of,
    place_open_now,
    register_number,
    run_dialer,
    wait_for,
)

#: Redis databases the processes may take (the e2e fleet scans from 14 down).
BROKER_DBS = range(1, 15)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HONCHO = Path(sys.executable).parent / "honcho"
USER_ID = "procfile"
CALLER = "+14155550177"
RECIPIENTS = 12
RETRY = {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "1s"}, "jitter": 0}
CALLEES = "weights=human=3,voicemail=1,busy=1,no_answer=1;ring=fixed:2;talk=fixed:4"


def _honcho(*args: str) -> list[str]:
    if not HONCHO.exists():  # pragma: no cover - the test extra installs it
        pytest.fail("honcho is not installed (pip install -e '.[test]')", pytrace=False)
    return [str(HONCHO), *args]


def _sessions_alive(leaders: set[int]) -> set[int]:
    """Processes (any depth) still in the sessions of ``leaders``: honcho starts each
    Procfile line as the leader of a session of its own."""
    alive = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session in leaders and state != "Z":
            alive.add(int(entry.name))
    return alive


@contextlib.contextmanager
def _honcho_started(env: dict[str, str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        honcho = subprocess.Popen(
            _honcho("start", "--no-colour", "-p", str(port), "web", "worker", "scheduler"),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield honcho
    finally:
        if honcho.poll() is None:  # the test failed before stopping it: leave nothing behind
            for leader in _leaders(log.read_text(errors="replace")) | {honcho.pid}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(leader, signal.SIGKILL)
            honcho.wait(timeout=10)


def _leaders(output: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"\w+\.\d+ started \(pid=(\d+)\)", output)}


def test_the_procfile_runs_a_campaign_under_honcho(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    del postgres_url  # requested so a missing server fails in CI; the scratch DB uses it
    # Celery's queue names are fixed: the processes get a Redis database of their own.
    broker_url = claim_redis_db(redis_url, BROKER_DBS)
    broker = redis.Redis.from_url(broker_url, socket_timeout=5)
    database_url, drop = scratch_database_url("postgresql", tmp_path)
    port = free_port()
    env = base_env(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOST=LOCALHOST,
        DIALER_DATABASE_URL=database_url,
        DIALER_REDIS_URL=broker_url,
        DIALER_PROVIDER="simulator",
        DIALER_SIMULATOR_TIME_SCALE="0.02",
        DIALER_SIMULATOR_SEED="3",
        DIALER_SIMULATOR_PROFILE=CALLEES,
        DIALER_CALLS_PER_SECOND="50",
        DIALER_SCHEDULER_INTERVAL_S="0.2",
        DIALER_LOG_LEVEL="INFO",
    )
    log = tmp_path / "honcho.log"
    try:
        release = subprocess.run(
            _honcho("start", "--no-colour", "release"),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert release.returncode == 0, release.stdout + release.stderr
        assert "database at head" in release.stdout
        key = run_dialer("apikey", "create", "--user-id", USER_ID, env=env).strip()

        with _honcho_started(env, log, port) as honcho:
            output = lambda: log.read_text(errors="replace")  # noqa: E731
            node = f"worker.1@{socket.gethostname()}"
            wait_for(
                "the API and the worker to be up",
                lambda: honcho.poll() is None and f"{node} ready." in output() and _healthy(port),
                timeout_s=90,
                describe=output,
            )
            campaign_id, counts = _run_campaign(port, key)
            assert counts["total"] == counts["ended"] == RECIPIENTS, counts
            assert counts["pending"] == counts["in_progress"] == counts["scheduled"] == 0
            assert counts["done"] + counts["exhausted"] == RECIPIENTS, counts
            attempts = _export_rows(port, key, campaign_id)
            assert len(attempts) == sum(counts["outcomes"].values()) >= RECIPIENTS
            assert all(row["status"] == "ended" for row in attempts)
            # The worker answers under the name the Procfile gives it.
            assert _ping(broker_url, node) == [{node: {"ok": "pong"}}]

            leaders = _leaders(output())
            assert len(leaders) == 3, output()
            assert _sessions_alive(leaders)
            honcho.send_signal(signal.SIGTERM)
            assert honcho.wait(timeout=30) in (0, 143), output()
        assert "SIGTERM received" in output()
        wait_for(
            "every process honcho started to exit",
            lambda: not _sessions_alive(leaders),
            timeout_s=10,
            describe=lambda: f"still alive: {_sessions_alive(leaders)}",
        )
    finally:
        broker.flushdb()
        broker.close()
        drop()


def _healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(
            f"http://{LOCALHOST}:{port}/healthz", timeout=1.0, trust_env=False
        ).is_success
    except httpx.TransportError:
        return False


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-User-ID": USER_ID}


def _run_campaign(port: int, key: str) -> tuple[str, dict[str, object]]:
    """A campaign created and started over HTTP, waited for until completed; its counts."""
    place = place_open_now()
    with api_client(f"http://{LOCALHOST}:{port}", _headers(key)) as client:
        register_number(client, CALLER)
        body = {
            "name": "Procfile",
            "assistant_id": "asst_procfile",
            "phone_number_id": CALLER,
            "max_concurrency": 4,
            "retry_policy": RETRY,
            "recipients": [{"phone_number": place.number(3000 + i)} for i in range(RECIPIENTS)],
        }
        created = json_of(client.post("/campaign", json=body), 201)
        assert created["recipient_batch"]["accepted"] == RECIPIENTS
        campaign_id = str(created["id"])
        assert json_of(client.post(f"/campaign/{campaign_id}/start"), 200)["status"] == "running"

        def completed() -> dict[str, object] | None:
            found: dict[str, object] = json_of(client.get(f"/campaign/{campaign_id}"), 200)
            return found if found["status"] == "completed" else None

        done = wait_for(
            f"campaign {campaign_id} to complete",
            completed,
            timeout_s=120,
            interval_s=0.5,
            describe=lambda: str(client.get(f"/campaign/{campaign_id}").json()["counts"]),
        )
    assert done["ended_reason"] == "campaign.ended.success"
    counts = done["counts"]
    assert isinstance(counts, dict)
    return campaign_id, counts


def _export_rows(port: int, key: str, campaign_id: str) -> list[dict[str, object]]:
    import json

    with api_client(f"http://{LOCALHOST}:{port}", _headers(key)) as client:
        response = client.get(f"/campaign/{campaign_id}/export", params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def _ping(redis_url: str, node: str) -> object:
    app = Celery(broker=redis_url)
    try:
        return app.control.ping(destination=[node], timeout=5.0)
    finally:
        app.close()
