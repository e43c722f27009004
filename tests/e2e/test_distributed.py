"""The distributed path end to end: API, Celery workers and scheduler as separate processes,
on real Redis and PostgreSQL, dialing through the Twilio adapter into the carrier simulator.

One fleet serves the module (starting it costs seconds of CPU per process): a scratch
PostgreSQL database, a Redis database of its own (flushed before and after), the carrier on a
thread of this process, and ``dialer api``, two ``dialer worker`` and one ``dialer scheduler``
subprocesses. Celery's broker is that Redis; the tests that matter for the broker's behaviour
(a campaign, a worker killed mid-dial) run again with a fleet on RabbitMQ (the test session's
virtual host, emptied first), when one is reachable. Each test reconfigures the carrier for
its own campaign and uses its own caller number and recipient numbers, so stats never mix
between tests.
"""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import counters
from dialer.carrier import CarrierConfig, Faults, RunningCarrier, running_carrier
from dialer.concurrency.keys import SEMAPHORE_PREFIX, SlotScope
from dialer.db.engine import make_engine, session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt, CallEvent, Campaign, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.open_places import OpenPlace
from dialer.queue.celery import SOFT_SHUTDOWN_TIMEOUT_S
from dialer.settings import Settings
from dialer.telephony.simulator.distributions import Fixed
from dialer.telephony.simulator.plan import OutcomeWeights, SimulationProfile
from dialer.telephony.twilio.signature import SIGNATURE_HEADER, sign
from tests.brokers import BROKERS, broker_under_test
from tests.conftest import scratch_database_url
from tests.e2e.fleet import (
    LOCALHOST,
    Proc,
    Processes,
    api_client,
    base_env,
    collecting_failures,
    dial_tasks_unfinished,
    free_port,
    json_of,
    place_open_now,
    register_number,
    run_dialer,
    wait_for,
    wait_http_ok,
    wait_worker_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
#: The fleet's broker, per test: the module's tests run on Redis, these on RabbitMQ too.
ON_EVERY_BROKER = pytest.mark.parametrize("fleet", BROKERS, indirect=True)
ON_REDIS = pytest.mark.parametrize("fleet", ["redis"], indirect=True)

#: Redis databases the fleet may take (the first empty one) for its Celery broker, semaphore
#: and pacing; the test services' own database (15 by default) is never one of them.
REDIS_DBS = range(14, 0, -1)
AUTH_TOKEN = "e2e-carrier-token"
USER_ID = "e2e"
#: Ring and call-length bounds of the fleet (the settings' minimums are 15 and 10): short,
#: so a live call's slot lease (ring + limit + 120 s margin) is 155 s.
RING_TIMEOUT_S = 15
CALL_TIME_LIMIT_S = 20
TERMINAL = {
    RecipientStatus.DONE,
    RecipientStatus.EXHAUSTED,
    RecipientStatus.SUPPRESSED,
    RecipientStatus.SKIPPED,
    RecipientStatus.CANCELED,
}
RETRY_POLICY = {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "1s"}, "jitter": 0}
#: How fast the scheduler gives up on a dial task a dead worker took (re-sends it) and on an
#: attempt left in dialing without a call id (asks the carrier). The product hard-codes 300 s
#: and 120 s today (``DispatchConfig.lost_task_timeout_s``, ``Reaper(unplaced_after_s=)``);
#: once settings of these names exist the fleet uses short bounds and test 2 runs in seconds.
#: The unplaced bound stays above the Twilio adapter's 10 s HTTP timeout plus the carrier's
#: slow-response delay, so a worker still waiting for its answer is never overtaken.
FAST_RECOVERY = {"lost_task_timeout_s": 10, "reap_unplaced_after_s": 20}
FAST_RECOVERY_SUPPORTED = all(name in Settings.model_fields for name in FAST_RECOVERY)
RECOVERY_ENV = (
    {f"DIALER_{name.upper()}": str(value) for name, value in FAST_RECOVERY.items()}
    if FAST_RECOVERY_SUPPORTED
    else {}
)
#: Seconds a killed worker's work can take to be recovered, on top of the campaign itself.
RECOVERY_BOUND_S = (
    max(FAST_RECOVERY.values()) if FAST_RECOVERY_SUPPORTED else 300
) + 2 * 5  # two reconcile intervals
#: Short calls: ring 2 s, a person talks 4 s (simulated seconds, scaled by the time scale).
QUICK_CALLS = SimulationProfile(ring_s=Fixed(2.0), talk_s=Fixed(4.0))


@dataclass
class Fleet:
    processes: Processes
    carrier: RunningCarrier
    api_base: str
    headers: dict[str, str]
    env: dict[str, str]
    database_url: str
    #: The Redis of the semaphore and the pacer (the broker too, on Redis).
    redis_url: str
    engine: Engine
    broker: str = "redis"

    @property
    def scheduler(self) -> Proc:
        return next(p for p in self.processes.procs if p.name == "scheduler")

    def workers(self) -> list[Proc]:
        return [p for p in self.processes.procs if p.name.startswith("worker") and p.alive()]

    def start_worker(self, name: str) -> Proc:
        proc = self.processes.spawn(name, ["worker", "--concurrency", "4"], self.env)
        wait_worker_ready(proc)
        return proc

    def client(self) -> httpx.Client:
        return api_client(self.api_base, self.headers)


@pytest.fixture(scope="module")
def fleet(
    request: pytest.FixtureRequest,
    redis_url: str,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    del postgres_url  # requested so a missing server fails in CI; the scratch DB uses it
    kind = getattr(request, "param", "redis")
    rabbitmq = request.getfixturevalue("rabbitmq_url") if kind == "rabbitmq" else None
    tmp = tmp_path_factory.mktemp(f"e2e-{kind}")
    processes = Processes(_logs(tmp))
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(broker_under_test(kind, redis_url, rabbitmq, REDIS_DBS))
        fleet_redis = broker.redis_url
        database_url, drop = scratch_database_url("postgresql", tmp)
        stack.callback(drop)
        upgrade(database_url)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        carrier = stack.enter_context(
            running_carrier(
                CarrierConfig(
                    auth_token=AUTH_TOKEN,
                    seed=1,
                    time_scale=0.05,
                    profile=QUICK_CALLS,
                    faults=Faults(duplicate_p=0.3, reorder_p=0.3),
                )
            )
        )
        api_port = free_port()
        env = base_env(
            DIALER_DATABASE_URL=database_url,
            **broker.env(),
            DIALER_PROVIDER="twilio",
            DIALER_TWILIO_ACCOUNT_SID=carrier.account_sid,
            DIALER_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            DIALER_TWILIO_BASE_URL=carrier.base_url,
            DIALER_PUBLIC_BASE_URL=f"http://{LOCALHOST}:{api_port}",
            DIALER_CALLS_PER_SECOND="50",
            DIALER_SCHEDULER_INTERVAL_S="0.2",
            DIALER_RECONCILE_INTERVAL_S="5",
            DIALER_RING_TIMEOUT_S=str(RING_TIMEOUT_S),
            DIALER_CALL_TIME_LIMIT_S=str(CALL_TIME_LIMIT_S),
            DIALER_LOG_LEVEL="INFO",
            **RECOVERY_ENV,
        )
        key = run_dialer("apikey", "create", "--user-id", USER_ID, env=env).strip()
        stack.callback(processes.stop_all)
        api = processes.spawn(
            "api",
            ["api", "--host", LOCALHOST, "--port", str(api_port)],
            {**env, "DIALER_LOG_LEVEL": "WARNING"},
        )
        workers = [
            processes.spawn(f"worker-{n}", ["worker", "--concurrency", "4"], env) for n in (1, 2)
        ]
        processes.spawn("scheduler", ["scheduler"], env)
        with collecting_failures(processes):
            wait_http_ok(f"http://{LOCALHOST}:{api_port}/healthz", api)
            for worker in workers:
                wait_worker_ready(worker)
        yield Fleet(
            processes=processes,
            carrier=carrier,
            api_base=f"http://{LOCALHOST}:{api_port}",
            headers={"Authorization": f"Bearer {key}", "X-User-ID": USER_ID},
            env=env,
            database_url=database_url,
            redis_url=fleet_redis,
            engine=engine,
            broker=kind,
        )


def _logs(tmp: Path) -> Path:
    logs = tmp / "logs"
    logs.mkdir()
    return logs


# -- helpers -------------------------------------------------------------------------------


@functools.cache
def _open_place() -> OpenPlace:
    """A place whose calling hours stay open for the next hours: picked once, when the first
    test dials."""
    return place_open_now()


def numbers(n: int, start: int) -> list[str]:
    return [_open_place().number(start + i) for i in range(n)]


def create_and_start(
    fleet: Fleet, phones: Sequence[str], *, caller: str, max_concurrency: int, name: str
) -> str:
    body = {
        "name": name,
        "assistant_id": "asst_e2e",
        "phone_number_id": caller,
        "caller_id_number": caller,
        "max_concurrency": max_concurrency,
        "retry_policy": RETRY_POLICY,
        "recipients": [{"phone_number": p, "metadata": {"row": i}} for i, p in enumerate(phones)],
    }
    with fleet.client() as client:
        register_number(client, caller)
        created = json_of(client.post("/campaign", json=body), 201)
        assert created["recipient_batch"]["accepted"] == len(phones), created["recipient_batch"]
        started = json_of(client.post(f"/campaign/{created['id']}/start"), 200)
        assert started["status"] == "running", started
    return str(created["id"])


def wait_completed(fleet: Fleet, campaign_id: str, *, timeout_s: float) -> dict[str, Any]:
    with fleet.client() as client:

        def probe() -> dict[str, Any] | None:
            body: dict[str, Any] = json_of(client.get(f"/campaign/{campaign_id}"), 200)
            return body if body["status"] == "completed" else None

        def describe() -> str:
            counts = client.get(f"/campaign/{campaign_id}").json().get("counts")
            return f"counts {counts}; {stuck_report(fleet, campaign_id)}"

        return wait_for(
            f"campaign {campaign_id} to complete",
            probe,
            timeout_s=timeout_s,
            interval_s=0.5,
            describe=describe,
        )


def stuck_report(fleet: Fleet, campaign_id: str) -> str:
    """What keeps a campaign from completing: its live attempts, and the fleet's errors."""
    live = [
        (a.id, a.status.value, a.provider_call_id, a.error_code, a.dialed_at)
        for a in attempts_of(fleet, campaign_id)
        if a.status is not AttemptStatus.ENDED
    ]
    errors = [
        line
        for proc in fleet.processes.procs
        for line in proc.text().splitlines()
        if " ERROR " in line or " WARNING dialer.services" in line
    ]
    return f"live attempts {live[:10]}; errors logged ({len(errors)}): {errors[:6]}"


def carrier_calls(fleet: Fleet, campaign_id: str) -> list[dict[str, Any]]:
    with httpx.Client(trust_env=False, timeout=15) as client:
        calls: list[dict[str, Any]] = json_of(
            client.get(f"{fleet.carrier.base_url}/__carrier__/calls"), 200
        )
    return [c for c in calls if c["campaign"] == campaign_id]


def attempts_of(fleet: Fleet, campaign_id: str) -> list[CallAttempt]:
    with session_factory(fleet.engine)() as session:
        return list(
            session.scalars(sa.select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        )


def verify_campaign(
    fleet: Fleet,
    campaign_id: str,
    phones: Sequence[str],
    *,
    caller: str,
    max_concurrency: int,
    api_body: dict[str, Any],
) -> dict[str, Any]:
    """The invariants every finished campaign must hold; returns figures for the log."""
    stats = fleet.carrier.stats()
    attempts = attempts_of(fleet, campaign_id)
    with session_factory(fleet.engine)() as session:
        recipients = list(
            session.scalars(sa.select(Recipient).where(Recipient.campaign_id == campaign_id))
        )
        truth = counters.truth(session, campaign_id)
        tenant_id = session.get_one(Campaign, campaign_id).tenant_id

    # 1. Never more calls in flight than max_concurrency, as the carrier counted them.
    peak_campaign = stats["peak"]["by_campaign"].get(campaign_id, 0)
    peak_caller = stats["peak"]["by_caller"].get(caller, 0)
    assert 0 < peak_campaign <= max_concurrency, stats["peak"]
    assert peak_caller <= max_concurrency, stats["peak"]
    assert stats["live"]["by_campaign"].get(campaign_id, 0) == 0, "a call is still up"

    # 2. At most one call per attempt: every carrier call is one attempt's, and no two
    #    attempts share a call; per number, carrier calls == attempts with a call id.
    call_ids = [a.provider_call_id for a in attempts if a.provider_call_id is not None]
    assert len(call_ids) == len(set(call_ids)), "two attempts hold the same call id"
    carrier_sids = {c["sid"] for c in carrier_calls(fleet, campaign_id)}
    assert carrier_sids == set(call_ids), (
        f"carrier calls not on any attempt: {sorted(carrier_sids - set(call_ids))[:10]}; "
        f"attempt call ids the carrier never saw: {sorted(set(call_ids) - carrier_sids)[:10]}"
    )
    with_call = Counter(a.to_number for a in attempts if a.provider_call_id is not None)
    by_to = stats["calls_by_to"]
    mismatched = {p: (by_to.get(p, 0), with_call.get(p, 0)) for p in phones}
    mismatched = {p: v for p, v in mismatched.items() if v[0] != v[1]}
    assert not mismatched, f"number: (carrier calls, attempts with a call id): {mismatched}"
    per_attempt_number = Counter((a.recipient_id, a.attempt_number) for a in attempts)
    assert max(per_attempt_number.values()) == 1

    # 3. Every recipient terminal, every attempt ended, no slot left behind in Redis.
    assert len(recipients) == len(phones)
    open_ = [(r.phone_number, r.status.value) for r in recipients if r.status not in TERMINAL]
    assert not open_, f"recipients not terminal: {open_[:20]}"
    live = [(a.id, a.status.value) for a in attempts if a.status is not AttemptStatus.ENDED]
    assert not live, f"attempts not ended: {live[:20]}"
    for r in recipients:
        assert r.attempt_count <= RETRY_POLICY["max_attempts"], (r.phone_number, r.attempt_count)
    client = redis.Redis.from_url(fleet.redis_url, socket_timeout=5)
    try:
        key = SlotScope(campaign_id, tenant_id).campaign_key(SEMAPHORE_PREFIX)
        assert client.zcard(key) == 0, f"slots still held: {client.zrange(key, 0, -1)}"
    finally:
        client.close()

    # 4. Counts reconcile: the API's counts are a GROUP BY over the rows, and the counters
    #    never drifted during the run (the scheduler's reconcile would have repaired and
    #    logged it, hiding the drift from the final comparison).
    counts = api_body["counts"]
    assert counts["total"] == len(phones)
    for status in RecipientStatus:
        assert counts[status.value] == truth[counters.recipient_key(status)], (status, counts)
    for outcome in Outcome:
        assert counts["outcomes"][outcome.value] == truth[counters.outcome_key(outcome)], (
            outcome,
            counts,
        )
    assert sum(counts["outcomes"].values()) == len(attempts)
    drift = [
        line
        for line in fleet.scheduler.text().splitlines()
        if f"drift in campaign {campaign_id}" in line
    ]
    assert not drift, f"counters drifted during the run: {drift[:5]}"
    return {
        "attempts": len(attempts),
        "calls": len(carrier_sids),
        "peak_campaign": peak_campaign,
        "outcomes": {k: v for k, v in counts["outcomes"].items() if v},
        "recipients": {s.value: counts[s.value] for s in RecipientStatus if counts[s.value]},
        "webhooks": stats["webhooks"],
        "faults": stats["faults"],
    }


def start_with_workers_in_place_call(
    fleet: Fleet, phones: Sequence[str], *, caller: str, name: str
) -> tuple[str, list[int], Proc]:
    """Start a campaign (``max_concurrency`` 8) while every REST answer of the carrier comes
    1.5 s late (after the request took effect), so the workers sit inside place_call.

    Returns the campaign, the attempts caught dialing without a call id, and the worker
    holding the most unfinished dial tasks (by its log): the one to stop.
    """
    fleet.carrier.carrier.reconfigure(
        time_scale=0.1,
        profile=QUICK_CALLS,
        faults=Faults(duplicate_p=0.3, reorder_p=0.3, slow_p=1.0, slow_delay_s=1.5),
    )
    campaign_id = create_and_start(fleet, phones, caller=caller, max_concurrency=8, name=name)

    def dialing() -> list[int]:
        return [
            a.id
            for a in attempts_of(fleet, campaign_id)
            if a.status is AttemptStatus.DIALING and a.provider_call_id is None
        ]

    caught = wait_for("attempts in dialing", dialing, timeout_s=60, interval_s=0.02)

    def busiest() -> Proc | None:
        # The first call goes out inside the start's dispatch task, and its log line may
        # trail the attempt's row: wait until a worker's log shows a task placing calls.
        victim = max(fleet.workers(), key=lambda w: len(dial_tasks_unfinished(w.text())))
        return victim if dial_tasks_unfinished(victim.text()) else None

    victim = wait_for("a worker inside place_call", busiest, timeout_s=30, interval_s=0.02)
    return campaign_id, caught, victim


# -- the tests -----------------------------------------------------------------------------


@ON_EVERY_BROKER
def test_campaign_through_twilio_adapter_and_carrier(fleet: Fleet) -> None:
    fleet.carrier.carrier.reconfigure(
        time_scale=0.05, profile=QUICK_CALLS, faults=Faults(duplicate_p=0.3, reorder_p=0.3)
    )
    # On RabbitMQ a smaller campaign: the path is the same, the broker is what is new.
    size = 300 if fleet.broker == "redis" else 100
    phones = numbers(size, 1000)
    caller = "+14155550100"
    began = time.monotonic()
    with collecting_failures(fleet.processes):
        campaign_id = create_and_start(
            fleet, phones, caller=caller, max_concurrency=20, name=f"e2e-{size}"
        )
        body = wait_completed(fleet, campaign_id, timeout_s=240)
        elapsed = time.monotonic() - began
        figures = verify_campaign(
            fleet, campaign_id, phones, caller=caller, max_concurrency=20, api_body=body
        )
        assert figures["webhooks"].get("failed", 0) == 0, figures["webhooks"]
    print(f"\n[e2e] {size} recipients on {fleet.broker} completed in {elapsed:.1f}s: {figures}")


@ON_EVERY_BROKER
def test_worker_killed_mid_dial_loses_nothing_and_dials_nothing_twice(fleet: Fleet) -> None:
    # The workers sit inside place_call; SIGKILL one of them there.
    phones = numbers(40, 2000)
    caller = "+14155550101"
    began = time.monotonic()
    with collecting_failures(fleet.processes):
        campaign_id, caught, victim = start_with_workers_in_place_call(
            fleet, phones, caller=caller, name="e2e-kill"
        )
        victim.kill_group()  # SIGKILL the worker and its pool children, mid place_call
        victim.popen.wait(timeout=10)
        killed_at = time.monotonic()
        in_flight = dial_tasks_unfinished(victim.text())
        print(
            f"\n[e2e] killed {victim.name} {killed_at - began:.1f}s in; attempts dialing then: "
            f"{caught}; dial tasks it had not finished: {len(in_flight)}"
        )
        assert in_flight, "the kill should have interrupted at least one dial task"
        fleet.start_worker("worker-3")
        body = wait_completed(fleet, campaign_id, timeout_s=RECOVERY_BOUND_S + 30)
        elapsed = time.monotonic() - began
        figures = verify_campaign(
            fleet, campaign_id, phones, caller=caller, max_concurrency=8, api_body=body
        )
    recovery = [
        line.split(": ", 1)[-1][:160]
        for line in fleet.scheduler.text().splitlines()
        if "re-sending" in line or "reaper:" in line
    ]
    print(
        f"[e2e] kill campaign completed {elapsed:.1f}s after start "
        f"({time.monotonic() - killed_at:.1f}s after the kill); recovery: {recovery}; {figures}"
    )


@ON_REDIS
def test_worker_stopped_with_sigterm_finishes_its_dials_first(fleet: Fleet) -> None:
    # The workers sit inside place_call; SIGTERM one there. A warm shutdown finishes the dial
    # tasks it is running (each call gets its id from the carrier's answer), hands back the
    # ones it had not started, and exits by itself: nothing waits for the outbox or the reaper.
    phones = numbers(40, 3000)
    caller = "+14155550102"
    began = time.monotonic()
    with collecting_failures(fleet.processes):
        campaign_id, caught, victim = start_with_workers_in_place_call(
            fleet, phones, caller=caller, name="e2e-sigterm"
        )
        running = dial_tasks_unfinished(victim.text())
        assert running, "the worker should be inside at least one dial task"
        victim.kill_group(signal.SIGTERM)
        victim.popen.wait(timeout=SOFT_SHUTDOWN_TIMEOUT_S + 15)
        stopped_at = time.monotonic()
        assert victim.popen.returncode == 0, victim.tail()
        # "received" in the log is a task taken from the queue, started or only reserved: the
        # started ones finished, the reserved ones went back to the queue, unacknowledged.
        left = dial_tasks_unfinished(victim.text())
        restored = sum(int(n) for n in re.findall(r"Restoring (\d+) unacknowledged", victim.text()))
        assert len(left) <= restored, (left, restored)
        print(
            f"\n[e2e] SIGTERM to {victim.name} {stopped_at - began:.1f}s in, with "
            f"{len(running)} dial task(s) taken (attempts dialing then: {caught}); it exited 0, "
            f"{len(running) - len(left)} finished, {restored} message(s) handed back"
        )
        fleet.start_worker("worker-4")
        body = wait_completed(fleet, campaign_id, timeout_s=120)
        figures = verify_campaign(
            fleet, campaign_id, phones, caller=caller, max_concurrency=8, api_body=body
        )
        # Nothing was left for the recoveries: no ambiguous dial ended unknown, and no
        # attempt of this campaign was re-sent from the outbox.
        assert body["counts"]["outcomes"]["unknown"] == 0, body["counts"]
        ids = {a.id for a in attempts_of(fleet, campaign_id)}
        resent = [
            line
            for line in fleet.scheduler.text().splitlines()
            if "found in the outbox" in line
            and ids & {int(n) for n in re.findall(r"\d+", line.rsplit("[", 1)[-1])}
        ]
        assert not resent, resent
    print(f"[e2e] SIGTERM campaign completed: {figures}")


@ON_REDIS
def test_forged_callback_is_rejected(fleet: Fleet) -> None:
    # One person who answers and stays on the line (time limit 20 s) with no faults, so the
    # attempt sits still in in_progress while the forgeries come in.
    fleet.carrier.carrier.reconfigure(
        time_scale=1.0,
        faults=Faults(),
        profile=SimulationProfile(
            weights=OutcomeWeights(human=1.0, voicemail=0.0, busy=0.0, no_answer=0.0, failed=0.0),
            setup_s=Fixed(0.5),
            ring_s=Fixed(0.5),
            amd_s=Fixed(0.5),
            talk_s=Fixed(600.0),
        ),
    )
    caller = "+14155550102"
    phone = numbers(1, 3000)
    with collecting_failures(fleet.processes):
        campaign_id = create_and_start(
            fleet, phone, caller=caller, max_concurrency=1, name="e2e-forged"
        )

        def answered() -> CallAttempt | None:
            found = attempts_of(fleet, campaign_id)
            if (
                found
                and found[0].status is AttemptStatus.IN_PROGRESS
                and found[0].answered_by == "human"
            ):
                return found[0]
            return None

        attempt = wait_for("the call to be answered", answered, timeout_s=30, interval_s=0.1)
        sid = attempt.provider_call_id
        assert sid is not None
        before = _attempt_view(fleet, attempt.id)

        path = f"/webhooks/twilio/{attempt.id}/status?campaign={campaign_id}"
        public = fleet.api_base + path
        params = {
            "AccountSid": fleet.carrier.account_sid,
            "CallSid": sid,
            "CallStatus": "busy",
            "SequenceNumber": "90",
            "SipResponseCode": "486",
        }
        elsewhere = f"/webhooks/twilio/{attempt.id + 1}/status?campaign={campaign_id}"
        forgeries = {
            "wrong token": {SIGNATURE_HEADER: sign(public, params, "not-the-token")},
            "no signature": {},
            "garbage signature": {SIGNATURE_HEADER: "AAAA"},
            "signed for another URL": {
                SIGNATURE_HEADER: sign(
                    f"http://localhost:{public.rsplit(':', 1)[1]}", params, AUTH_TOKEN
                )
            },
            "signed for another attempt": {
                SIGNATURE_HEADER: sign(fleet.api_base + elsewhere, params, AUTH_TOKEN)
            },
            "signed over other params": {
                SIGNATURE_HEADER: sign(public, {**params, "CallStatus": "ringing"}, AUTH_TOKEN)
            },
        }
        amd_path = f"/webhooks/twilio/{attempt.id}/amd?campaign={campaign_id}"
        amd_params = {"CallSid": sid, "AnsweredBy": "machine_end_beep"}
        with httpx.Client(base_url=fleet.api_base, trust_env=False, timeout=15) as client:
            for name, headers in forgeries.items():
                response = client.post(path, data=params, headers=headers)
                assert response.status_code == 403, (name, response.status_code, response.text)
                assert response.json()["error"] == "forbidden", name
            response = client.post(
                amd_path,
                data=amd_params,
                headers={SIGNATURE_HEADER: sign(fleet.api_base + amd_path, amd_params, "nope")},
            )
            assert response.status_code == 403, response.text
        assert _attempt_view(fleet, attempt.id) == before, "a forged callback changed the attempt"

        # Genuine callbacks still get through: hang the call up at the carrier.
        with httpx.Client(trust_env=False, timeout=15) as carrier:
            hung = carrier.post(
                f"{fleet.carrier.base_url}/2010-04-01/Accounts/{fleet.carrier.account_sid}"
                f"/Calls/{sid}.json",
                data={"Status": "completed"},
                auth=(fleet.carrier.account_sid, AUTH_TOKEN),
            )
            assert hung.status_code == 200, hung.text
        body = wait_completed(fleet, campaign_id, timeout_s=60)
        ended = _attempt_view(fleet, attempt.id)
        assert ended["status"] == AttemptStatus.ENDED.value
        assert ended["outcome"] == Outcome.HUMAN.value, ended
        assert body["counts"]["outcomes"]["busy"] == 0
        assert body["counts"]["done"] == 1


def _attempt_view(fleet: Fleet, attempt_id: int) -> dict[str, Any]:
    with session_factory(fleet.engine)() as session:
        attempt = session.get_one(CallAttempt, attempt_id)
        events = session.execute(
            sa.select(CallEvent.kind, CallEvent.sequence_number, CallEvent.call_status)
            .where(CallEvent.attempt_id == attempt_id)
            .order_by(CallEvent.id)
        ).all()
        return {
            "status": attempt.status.value,
            "outcome": attempt.outcome.value if attempt.outcome else None,
            "provider_call_id": attempt.provider_call_id,
            "answered_by": attempt.answered_by,
            "ended_at": attempt.ended_at,
            "duration_s": attempt.duration_s,
            "error_code": attempt.error_code,
            "events": [tuple(e) for e in events],
        }


@pytest.mark.parametrize("via", ["api", "cli"])
def test_stop_with_hang_up_ends_the_calls_in_flight_at_the_carrier(fleet: Fleet, via: str) -> None:
    # Real time, and calls that would talk until the 20 s time limit: a call that ends well
    # before it ended because it was hung up.
    fleet.carrier.carrier.reconfigure(
        time_scale=1.0,
        profile=SimulationProfile(
            weights=OutcomeWeights(human=1.0, voicemail=0.0, busy=0.0, no_answer=0.0, failed=0.0),
            ring_s=Fixed(1.0),
            talk_s=Fixed(10_000.0),
        ),
        faults=Faults(),
    )
    phones = numbers(6, 4000 if via == "api" else 4100)
    caller = "+14155550104"
    with collecting_failures(fleet.processes), fleet.client() as client:
        campaign_id = create_and_start(
            fleet, phones, caller=caller, max_concurrency=3, name=f"e2e-hang-up-{via}"
        )

        def talking() -> list[dict[str, Any]] | None:
            live: list[dict[str, Any]] = json_of(client.get("/call"), 200)["data"]
            mine = [c for c in live if c["campaign_id"] == campaign_id]
            answered = [c for c in mine if c["status"] == "in_progress"]
            return mine if len(answered) == 3 else None

        calls = wait_for("three calls answered", talking, timeout_s=30, interval_s=0.2)
        assert all(c["provider_call_id"] for c in calls)
        waiting = json_of(client.get(f"/campaign/{campaign_id}"), 200)["waiting"]
        assert waiting["slots"] == {
            "max_concurrency": 3, "in_use": 3, "free": 0, "source": "semaphore",
        }, waiting  # fmt: skip
        assert waiting["due"] == 3, waiting

        stopped_at = time.monotonic()
        if via == "api":
            json_of(client.post(f"/campaign/{campaign_id}/stop", json={"hang_up": True}), 200)
        else:
            said = run_dialer(
                "campaign", "stop", campaign_id, "--user-id", USER_ID, "--hang-up", env=fleet.env
            )
            assert said.splitlines()[-1] == "hung up 3 of 3 calls in flight", said

        def all_ended() -> bool | None:
            attempts = attempts_of(fleet, campaign_id)
            return all(a.status is AttemptStatus.ENDED for a in attempts) or None

        wait_for("the calls hung up", all_ended, timeout_s=15, interval_s=0.2)
        ended_after_s = time.monotonic() - stopped_at
        assert ended_after_s < CALL_TIME_LIMIT_S / 2, ended_after_s
        others = json_of(client.get("/call"), 200)["data"]
        assert all(c["campaign_id"] != campaign_id for c in others), others
        body = json_of(client.get(f"/campaign/{campaign_id}"), 200)
        assert body["waiting"]["slots"]["in_use"] == 0, body["waiting"]
        figures = verify_campaign(
            fleet, campaign_id, phones, caller=caller, max_concurrency=3, api_body=body
        )
    assert body["counts"]["canceled"] == 3, body["counts"]
    print(
        f"\n[e2e] stop with hang-up ({via}): calls ended {ended_after_s:.1f}s after it; {figures}"
    )
