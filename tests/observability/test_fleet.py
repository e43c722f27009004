"""Acceptance: a small campaign through a real fleet (API, a worker, the scheduler, the carrier
simulator), then the API's ``/metrics`` and the worker's and scheduler's exporters scraped and
compared with the database; and the processes' log lines read as JSON carrying the ids."""

from __future__ import annotations

import contextlib
import functools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.carrier import CarrierConfig, running_carrier
from dialer.db.engine import make_engine, session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt, Campaign
from dialer.observability import metrics
from dialer.policy.attempt_state import AttemptStatus
from dialer.telephony.simulator.distributions import Fixed
from dialer.telephony.simulator.plan import SimulationProfile
from tests.conftest import scratch_database_url
from tests.e2e.fleet import (
    LOCALHOST,
    Processes,
    api_client,
    base_env,
    claim_redis_db,
    collecting_failures,
    free_port,
    json_of,
    place_open_now,
    register_number,
    run_dialer,
    wait_for,
    wait_http_ok,
    wait_worker_ready,
)
from tests.observability.scrape import CONTRACT, SCRAPE_TIME, Scraped

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REDIS_DBS = range(14, 0, -1)
TOKEN = "obs-carrier-token"
USER_ID = "obs"
CALLER = "+12125550190"


@functools.cache
def recipients() -> list[str]:
    """Numbers of a place open for the next hours: picked once, when the first test runs."""
    place = place_open_now()
    return [place.number(7000 + i) for i in range(8)]


MAX_CONCURRENCY = 2
#: Calls that ring a second and talk two (simulated; the carrier runs 20 times faster).
CALLS = SimulationProfile(ring_s=Fixed(1.0), talk_s=Fixed(2.0))


@dataclass
class Fleet:
    processes: Processes
    api: str
    worker_metrics: str
    scheduler_metrics: str
    headers: dict[str, str]
    engine: Engine


@pytest.fixture(scope="module")
def fleet(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    del postgres_url  # requested so a missing server fails in CI; the scratch DB uses it
    tmp = tmp_path_factory.mktemp("observability")
    logs = tmp / "logs"
    logs.mkdir()
    fleet_redis = claim_redis_db(redis_url, REDIS_DBS)
    broker = redis.Redis.from_url(fleet_redis, socket_timeout=5)
    processes = Processes(logs)
    with contextlib.ExitStack() as stack:
        stack.callback(broker.close)
        stack.callback(broker.flushdb)
        database_url, drop = scratch_database_url("postgresql", tmp)
        stack.callback(drop)
        upgrade(database_url)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        carrier = stack.enter_context(
            running_carrier(CarrierConfig(auth_token=TOKEN, seed=3, time_scale=0.05, profile=CALLS))
        )
        api_port, worker_port, scheduler_port = free_port(), free_port(), free_port()
        env = base_env(
            DIALER_DATABASE_URL=database_url,
            DIALER_REDIS_URL=fleet_redis,
            DIALER_PROVIDER="twilio",
            DIALER_TWILIO_ACCOUNT_SID=carrier.account_sid,
            DIALER_TWILIO_AUTH_TOKEN=TOKEN,
            DIALER_TWILIO_BASE_URL=carrier.base_url,
            DIALER_PUBLIC_BASE_URL=f"http://{LOCALHOST}:{api_port}",
            DIALER_CALLS_PER_SECOND="50",
            DIALER_SCHEDULER_INTERVAL_S="0.2",
            DIALER_RING_TIMEOUT_S="15",
            DIALER_CALL_TIME_LIMIT_S="20",
            DIALER_LOG_LEVEL="INFO",
            DIALER_LOG_FORMAT="json",
            DIALER_METRICS_HOST=LOCALHOST,
        )
        key = run_dialer("apikey", "create", "--user-id", USER_ID, env=env).strip()
        stack.callback(processes.stop_all)
        api = processes.spawn("api", ["api", "--host", LOCALHOST, "--port", str(api_port)], env)
        worker = processes.spawn(
            "worker",
            ["worker", "--concurrency", "4"],
            {**env, "DIALER_METRICS_PORT": str(worker_port)},
        )
        processes.spawn(
            "scheduler", ["scheduler"], {**env, "DIALER_METRICS_PORT": str(scheduler_port)}
        )
        with collecting_failures(processes):
            wait_http_ok(f"http://{LOCALHOST}:{api_port}/healthz", api)
            wait_worker_ready(worker)
        yield Fleet(
            processes=processes,
            api=f"http://{LOCALHOST}:{api_port}",
            worker_metrics=f"http://{LOCALHOST}:{worker_port}/metrics",
            scheduler_metrics=f"http://{LOCALHOST}:{scheduler_port}/metrics",
            headers={"Authorization": f"Bearer {key}", "X-User-ID": USER_ID},
            engine=engine,
        )


def scrape(url: str) -> Scraped:
    response = httpx.get(url, timeout=10, trust_env=False)
    assert response.status_code == 200, response.text[:500]
    return Scraped(response.text)


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of a process's output, each a JSON object (no banner, no bare warning)."""
    lines = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def test_a_campaign_shows_in_the_metrics_of_the_api_the_worker_and_the_scheduler(
    fleet: Fleet,
) -> None:
    with collecting_failures(fleet.processes), api_client(fleet.api, fleet.headers) as client:
        register_number(client, CALLER)
        body = {
            "name": "observed",
            "assistant_id": "asst_obs",
            "phone_number_id": CALLER,
            "caller_id_number": CALLER,
            "max_concurrency": MAX_CONCURRENCY,
            "retry_policy": {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "1s"}},
            "recipients": [{"phone_number": p} for p in recipients()],
        }
        campaign = json_of(client.post("/campaign", json=body), 201)["id"]
        json_of(client.post(f"/campaign/{campaign}/start"), 200)
        with fleet.engine.connect() as conn:
            tenant = conn.scalar(sa.select(Campaign.tenant_id).where(Campaign.id == campaign))
        labels = {"campaign": campaign, "tenant": str(tenant)}

        # While it runs: the per-campaign gauges and the queue depth, from the API.
        running = wait_for(
            "the running campaign in the API's metrics",
            lambda: (
                (s := scrape(f"{fleet.api}/metrics")).values(
                    "dialer_campaign_slots_limit", **labels
                )
                and s
            ),
            timeout_s=30,
        )
        assert running.value("dialer_campaign_slots_limit", **labels) == MAX_CONCURRENCY
        assert 0 <= running.value("dialer_campaign_slots_in_use", **labels) <= MAX_CONCURRENCY
        assert 0 <= running.value("dialer_campaign_calls_in_flight", **labels) <= MAX_CONCURRENCY
        assert running.total("dialer_campaign_recipients", **labels) == len(recipients())
        assert {s.labels["queue"] for s in running.samples if s.name == "dialer_queue_depth"} == {
            "dial",
            "events",
        }
        assert all(v >= 0 for v in running.values("dialer_queue_depth"))

        wait_for(
            "the campaign to complete",
            lambda: json_of(client.get(f"/campaign/{campaign}"), 200)["status"] == "completed",
            timeout_s=120,
            interval_s=0.5,
        )
        with session_factory(fleet.engine)() as session:
            attempts = list(
                session.scalars(sa.select(CallAttempt).where(CallAttempt.campaign_id == campaign))
            )
        assert all(a.status is AttemptStatus.ENDED for a in attempts)
        placed = sum(1 for a in attempts if a.provider_call_id is not None)

        api, scheduler = scrape(f"{fleet.api}/metrics"), scrape(fleet.scheduler_metrics)
        worker = scrape(fleet.worker_metrics)
        version = metrics.dialer_version()
        assert api.value("dialer_build_info", version=version, role="api") == 1
        assert worker.value("dialer_build_info", version=version, role="worker") == 1
        assert scheduler.value("dialer_build_info", version=version, role="scheduler") == 1
        for name, (kind, names) in CONTRACT.items():
            assert api.types.get(name) == kind, name
            if name in SCRAPE_TIME:
                assert running.label_names(name) == names, name
            else:
                assert worker.types.get(name) == kind, name
                assert scheduler.types.get(name) == kind, name
                if names:
                    assert api.label_names(name) == worker.label_names(name) == names, name

        # Only the worker dials; every attempt it placed was dialed once.
        assert placed >= len(recipients())
        assert worker.value("dialer_dials_total", result="dialed") == placed
        assert api.value("dialer_dials_total", result="dialed") == 0
        assert worker.value("dialer_dial_latency_seconds_count") == placed
        # Each end is counted once, by the process that recorded it (mostly the API's
        # webhooks; the scheduler's sweep, the worker's refusals).
        ended: Counter[str] = Counter(a.outcome.value for a in attempts if a.outcome)
        for outcome, n in ended.items():
            counted = sum(
                p.value("dialer_call_outcomes_total", outcome=outcome)
                for p in (api, worker, scheduler)
            )
            assert counted == n, outcome
        assert sum(p.total("dialer_call_outcomes_total") for p in (api, worker, scheduler)) == len(
            attempts
        )
        assert api.value("dialer_callback_seconds_count") > 0
        assert (
            0
            < api.total("dialer_callbacks_received_total")
            <= api.value("dialer_callback_seconds_count")
        )
        assert scheduler.value("dialer_scheduler_tick_seconds_count") > 0
        assert scheduler.value("dialer_scheduler_dispatched_total") >= 1
        assert scheduler.value("dialer_scheduler_dispatched_total") + worker.total(
            "dialer_dials_total"
        ) >= len(recipients())


def test_the_processes_log_json_lines_with_the_ids_of_what_they_handle(fleet: Fleet) -> None:
    with collecting_failures(fleet.processes), api_client(fleet.api, fleet.headers) as client:
        json_of(client.get("/campaign"), 200)
        logs = {p.name: p.log for p in fleet.processes.procs}

        def access_line() -> dict[str, Any] | None:
            lines = json_lines(logs["api"])
            return next(
                (
                    line
                    for line in lines
                    if line["logger"] == "uvicorn.access"
                    and "GET /campaign HTTP" in line["message"]
                ),
                None,
            )

        access = wait_for("the API's access line", access_line, timeout_s=10)
    assert access["tenant_id"]
    for name in ("api", "worker", "scheduler"):
        lines = json_lines(logs[name])
        assert lines, name
        for line in lines:
            assert {"time", "level", "logger", "message"} <= set(line), (name, line)
        assert not any(p in logs[name].read_text() for p in recipients()), "numbers are masked"
    api = json_lines(logs["api"])
    assert any(line["logger"] == "uvicorn.error" for line in api)
    worker = json_lines(logs["worker"])
    assert any(
        line["logger"].startswith("celery") and " ready." in line["message"] for line in worker
    )
    dials = [
        line
        for line in worker
        if line["logger"] == "celery.app.trace" and "Task dialer.dial[" in line["message"]
    ]
    assert dials, "the worker logged its dial tasks"
    assert all(isinstance(line.get("attempt_id"), int) for line in dials), dials[:3]
    dispatches = [
        line
        for line in worker
        if line["logger"] == "celery.app.trace" and "dialer.dispatch_campaign[" in line["message"]
    ]
    assert all(line.get("campaign_id") for line in dispatches), dispatches[:3]
