"""The chaos run's fleet: its own servers, the carrier, and the dialer's processes by role.

Unlike the end-to-end module's fleet, every piece here is meant to be killed and brought
back during the run: the API restarts on the same port (the carrier's webhook URLs stay
valid), workers and schedulers are replaced, Redis and PostgreSQL restart in place. The
carrier runs on a thread of the test process, so its records survive all of that and the
test can change its faults between phases.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dialer.carrier import CarrierConfig, Faults, RunningCarrier, running_carrier
from dialer.settings import Settings
from dialer.telephony.simulator.distributions import Fixed, Uniform
from dialer.telephony.simulator.plan import OutcomeWeights, SimulationProfile
from tests.chaos.servers import PostgresServer, RedisServer
from tests.e2e.fleet import (
    LOCALHOST,
    Proc,
    Processes,
    api_client,
    base_env,
    collecting_failures,
    free_port,
    run_dialer,
    wait_http_ok,
    wait_worker_ready,
)

AUTH_TOKEN = "chaos-carrier-token"
#: Wall seconds per simulated second: a call below lasts one to three seconds of wall time.
TIME_SCALE = 0.15
#: Simulated callees: mostly people and machines, some busy, unanswered and failed, with
#: short rings and talks (simulated seconds; a no-answer rings the whole 15 s ring time).
PROFILE = SimulationProfile(
    weights=OutcomeWeights(human=4, voicemail=2, busy=1, no_answer=1, failed=1),
    setup_s=Fixed(1.0),
    ring_s=Uniform(1.0, 4.0),
    talk_s=Uniform(2.0, 6.0),
    amd_s=Fixed(2.0),
    greeting_s=Uniform(2.0, 4.0),
    message_s=Uniform(2.0, 4.0),
    reject_s=Uniform(1.0, 2.0),
)
#: Callbacks repeat and arrive out of order all run long, as Twilio's do.
BASE_FAULTS = Faults(duplicate_p=0.1, reorder_p=0.1)
#: The dialer's bounds, as short as the settings allow: ticks, reconciles, the re-send of a
#: lost dial task, the provider look-up of an attempt left dialing (kept above the Twilio
#: adapter's 10 s HTTP timeout plus a slow carrier answer), ring time and call length.
FLEET_SETTINGS = {
    "scheduler_interval_s": "0.2",
    "reconcile_interval_s": "3",
    "lost_task_timeout_s": "5",
    "reap_unplaced_after_s": "15",
    "provider_sweep_s": "3",
    "ring_timeout_s": "15",
    "call_time_limit_s": "10",
    "calls_per_second": "50",
    "redis_connect_timeout_s": "1",
    "redis_timeout_s": "3",
}
WORKER_THREADS = 4


def supported_settings() -> dict[str, str]:
    """The fleet's settings this version of the dialer knows (newer ones are left out)."""
    return {
        f"DIALER_{name.upper()}": value
        for name, value in FLEET_SETTINGS.items()
        if name in Settings.model_fields
    }


@dataclass
class ChaosFleet:
    """The processes of one chaos run, by role; names are unique, so logs are never reused."""

    processes: Processes
    carrier: RunningCarrier
    postgres: PostgresServer
    redis: RedisServer
    env: dict[str, str]
    api_port: int
    keys: dict[str, str] = field(default_factory=dict)  # user id -> API key
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_base(self) -> str:
        return f"http://{LOCALHOST}:{self.api_port}"

    def client(self, user_id: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[user_id]}", "X-User-ID": user_id}
        return api_client(self.api_base, headers)

    def live(self, role: str) -> list[Proc]:
        return [p for p in self.processes.procs if p.name.startswith(role) and p.alive()]

    def start(self, role: str) -> Proc:
        """Start one more process of ``role`` (api, worker or scheduler) and wait for it."""
        name = f"{role}-{next(self._serial)}"
        if role == "api":
            proc = self.processes.spawn(
                name,
                ["api", "--host", LOCALHOST, "--port", str(self.api_port)],
                {**self.env, "DIALER_LOG_LEVEL": "WARNING"},
            )
            wait_http_ok(f"{self.api_base}/healthz", proc)
        elif role == "worker":
            proc = self.processes.spawn(name, _worker_args(), self.env)
            wait_worker_ready(proc)
        else:
            proc = self.processes.spawn(name, [role], self.env)
        return proc

    def kill(self, proc: Proc) -> None:
        """SIGKILL the process and its children, and reap it."""
        proc.kill_group()
        proc.popen.wait(timeout=10)

    def unexpected_exits(self, killed: set[str]) -> list[Proc]:
        """Processes that exited though the run did not kill them."""
        return [p for p in self.processes.procs if not p.alive() and p.name not in killed]

    def log_lines(self, role: str, needle: str) -> list[str]:
        return [
            line
            for proc in self.processes.procs
            if proc.name.startswith(role)
            for line in proc.text().splitlines()
            if needle in line
        ]


@contextmanager
def chaos_fleet(
    postgres: PostgresServer,
    redis: RedisServer,
    logs: Path,
    *,
    user_ids: tuple[str, ...],
    workers: int = 3,
    schedulers: int = 2,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[ChaosFleet]:
    """The API, ``schedulers`` schedulers and ``workers`` workers on the given servers,
    dialing the carrier; the schema migrated with ``dialer db upgrade``; one API key per
    user id (each its own tenant); ``overrides``: ``DIALER_*`` settings replacing the run's.
    Every process is stopped when the block ends."""
    processes = Processes(logs)
    with ExitStack() as stack:
        carrier = stack.enter_context(
            running_carrier(
                CarrierConfig(
                    auth_token=AUTH_TOKEN,
                    seed=7,
                    time_scale=TIME_SCALE,
                    profile=PROFILE,
                    faults=BASE_FAULTS,
                )
            )
        )
        api_port = free_port()
        env = base_env(
            DIALER_DATABASE_URL=postgres.url,
            DIALER_REDIS_URL=redis.url,
            DIALER_PROVIDER="twilio",
            DIALER_TWILIO_ACCOUNT_SID=carrier.account_sid,
            DIALER_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            DIALER_TWILIO_BASE_URL=carrier.base_url,
            DIALER_PUBLIC_BASE_URL=f"http://{LOCALHOST}:{api_port}",
            DIALER_LOG_LEVEL="INFO",
            **{**supported_settings(), **(overrides or {})},
        )
        run_dialer("db", "upgrade", env=env, timeout_s=120)
        fleet = ChaosFleet(processes, carrier, postgres, redis, env, api_port)
        for user_id in user_ids:
            fleet.keys[user_id] = run_dialer(
                "apikey", "create", "--user-id", user_id, env=env
            ).strip()
        stack.callback(processes.stop_all)
        with collecting_failures(processes):
            fleet.start("api")
            for _ in range(schedulers):
                fleet.start("scheduler")
            spawned = [
                processes.spawn(f"worker-{next(fleet._serial)}", _worker_args(), env)
                for _ in range(workers)
            ]
            for proc in spawned:
                wait_worker_ready(proc)
        yield fleet


def _worker_args() -> list[str]:
    return ["worker", "--concurrency", str(WORKER_THREADS)]
