"""``dialer campaign watch`` follows a real campaign, dialed meanwhile by the embedded
scheduler, until it completes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy.engine import Engine

from dialer.calls import counters
from dialer.db.engine import session_factory
from tests.cli.conftest import CALLER, Dialer, create_campaign, numbers, tenant
from tests.cli.running import scheduler_running
from tests.e2e.fleet import base_env, place_open_now

RETRY = {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "1s"}, "jitter": 0}


def test_watch_follows_a_campaign_to_completion(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(
        engine, alice, numbers(8, place=place_open_now()), zone=None, retry_policy=RETRY
    )
    assert dialer("campaign", "start", campaign_id, "--user-id", "alice").exit_code == 0

    with scheduler_running(engine):
        result = dialer(
            "campaign", "watch", campaign_id, "--user-id", "alice",
            "--interval", "0.1", "--timeout", "90",
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    *progress, summary = result.stdout.strip().splitlines()
    assert progress, "no line of progress before the end"
    assert " running " in progress[0]
    assert re.search(r" completed .* ended=8/8$", progress[-1]), progress[-1]
    with session_factory(engine)() as session:
        values = counters.read(session, [campaign_id])[campaign_id]
        assert values == counters.truth(session, campaign_id)
    states = ", ".join(
        f"{name.removeprefix(counters.RECIPIENT_PREFIX)} {n}"
        for name, n in values.items()
        if name.startswith(counters.RECIPIENT_PREFIX) and n
    )
    outcomes = ", ".join(
        f"{name.removeprefix(counters.ATTEMPT_PREFIX)} {n}"
        for name, n in values.items()
        if name.startswith(counters.ATTEMPT_PREFIX) and n
    )
    assert summary == (
        f"campaign {campaign_id} completed (campaign.ended.success): 8/8 recipients ended; "
        f"{states}; calls by outcome: {outcomes}"
    )


def test_watch_on_a_terminal_draws_bars_until_completion(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(3, place=place_open_now()), zone=None)
    assert dialer("campaign", "start", campaign_id, "--user-id", "alice").exit_code == 0
    with scheduler_running(engine, seed=9):
        result = dialer(
            "campaign", "watch", campaign_id, "--user-id", "alice", "--interval", "0.1",
            "--timeout", "90", env={"TTY_COMPATIBLE": "1"},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "━" in result.stdout
    assert "3/3" in result.stdout
    assert f"campaign {campaign_id} completed (campaign.ended.success): 3/3" in result.stdout


def test_watch_gives_up_after_its_timeout(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))  # a draft: nothing happens
    result = dialer(
        "campaign", "watch", campaign_id, "--user-id", "alice", "--interval", "0.1",
        "--timeout", "0.3",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: campaign {campaign_id} is still draft after 0.3 s"


@pytest.mark.e2e
def test_ctrl_c_stops_watching_with_status_130(engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))
    env = base_env(DIALER_DATABASE_URL=engine.url.render_as_string(hide_password=False))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "dialer", "campaign", "watch", campaign_id,
         "--user-id", "alice", "--interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()  # it is watching
        assert " draft " in first, first + (watcher.stderr.read() if watcher.stderr else "")
        time.sleep(0.3)
        os.kill(watcher.pid, signal.SIGINT)
        _, stderr = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in stderr
