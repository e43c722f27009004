"""A whole dialer fleet as separate processes, for the end-to-end tests.

``dialer api``, ``dialer worker`` and ``dialer scheduler`` run as subprocesses, each in its own
process group (so one can be SIGKILLed whole, Celery's pool children included), with their
output in log files under the test's temporary directory. The carrier simulator runs on a
thread of the test process (``running_carrier``), so a test can read its stats and change its
behaviour between campaigns. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
import redis

from dialer.policy.open_places import OpenPlace, place_open

ROOT = Path(__file__).resolve().parents[2]
LOCALHOST = "127.0.0.1"
_T = TypeVar("_T")

#: Zones spread around the globe: at any moment some are at night.
CANDIDATE_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Noumea",
    "Pacific/Auckland",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def redis_db_url(url: str, db: int) -> str:
    """``url`` pointing at database number ``db`` of the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


CLAIM_KEY = "dialer-e2e:claimed-by"
#: Keys a fleet leaves in its database: Celery's queues and kombu's bookkeeping, the
#: semaphore and the pacer. A database holding only these and no claim is a crashed run's.
_FLEET_KEYS = re.compile(rb"^(dial|events|unacked.*|_kombu\..*|dialer:.*)$")


def claim_redis_db(url: str, candidates: Sequence[int], *, ttl_s: int = 1800) -> str:
    """The URL of an unused Redis database among ``candidates``, claimed for this run.

    Celery's queue names are fixed, so two fleets sharing a database would consume each
    other's tasks (and a flush by one would wipe the other's semaphore): each fleet takes an
    empty database, marked with a claim key (SET NX, so two runs never take the same one). A
    database left behind by a run that died without cleaning up (only fleet keys, the claim
    expired) is flushed and reused. The caller flushes its database when done.
    """
    token = f"{socket.gethostname()}:{os.getpid()}:{time.time()}"
    for db in candidates:
        candidate = redis_db_url(url, db)
        client = redis.Redis.from_url(candidate, socket_timeout=5)
        try:
            if client.dbsize() and _abandoned(client):
                client.flushdb()
            if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True, ex=ttl_s):
                if client.dbsize() == 1:
                    return candidate
                client.delete(CLAIM_KEY)  # someone started using it meanwhile
        finally:
            client.close()
    raise AssertionError(f"no unused Redis database among {list(candidates)} for the fleet")


def _abandoned(client: redis.Redis) -> bool:
    """Only a dead fleet's keys, no claim, and no other client (a worker) on the database."""
    if client.exists(CLAIM_KEY):
        return False
    me = client.client_id()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    if any(int(c["db"]) == db and int(c["id"]) != me for c in client.client_list()):
        return False
    keys = list(client.scan_iter(count=500))
    return len(keys) < 10_000 and all(_FLEET_KEYS.match(key) for key in keys)


def place_open_now(now: datetime | None = None) -> OpenPlace:
    """A place (a zone, and a prefix of numbers that ring there alone) whose calling hours, as
    the dialer's own rules read them (weekly hours, holidays), stay open for the next hours.

    Picked at test time, so the whole run (minutes) stays inside its hours, whatever the hour
    and the day the tests run.
    """
    return place_open(now or datetime.now(ZoneInfo("UTC")), for_at_least=timedelta(hours=2))


def wait_for(
    what: str,
    probe: Callable[[], _T | None],
    *,
    timeout_s: float,
    interval_s: float = 0.2,
    describe: Callable[[], str] | None = None,
) -> _T:
    """Poll ``probe`` until it returns something truthy; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f": {describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        time.sleep(interval_s)


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without any DIALER_* or proxy variable, plus ``extra``.

    Logs are text unless ``extra`` says otherwise: the helpers that read a process's log
    (:func:`wait_worker_ready`, :func:`dial_tasks_unfinished`, the chaos runs' searches) read
    its text lines."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIALER_")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = f"{LOCALHOST},localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env["DIALER_LOG_FORMAT"] = "text"
    env.update(extra)
    return env


def run_dialer(*args: str, env: Mapping[str, str], timeout_s: float = 60.0) -> str:
    """Run ``python -m dialer ARGS`` to completion and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "dialer", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"dialer {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


#: Runs ``python -m dialer ARGS`` after asking Linux to SIGKILL it when the test process dies
#: (PR_SET_PDEATHSIG survives exec), so a test run killed without cleanup (SIGTERM from a
#: timeout, SIGKILL) leaves no fleet behind consuming a Redis database.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'dialer', *sys.argv[2:]])\n"
)


def _dialer_command(args: list[str]) -> list[str]:
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *args]
    return [sys.executable, "-m", "dialer", *args]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the process and its children, e.g. a Celery pool)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


@dataclass
class Processes:
    """Subprocesses started by one test module; every one is killed by :meth:`stop_all`."""

    logs: Path
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                _dialer_command(args),
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace_s: float = 5.0) -> None:
        """SIGTERM the group, then SIGKILL it if it is still there after ``grace_s``."""
        if proc.alive():
            proc.kill_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=grace_s)
        proc.kill_group(signal.SIGKILL)  # the group: pool children may outlive the parent
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace_s)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.kill_group(signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for proc in self.procs:
            proc.kill_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5.0)

    def report(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- {p.name} (exit {p.popen.poll()}) ---\n{p.tail(lines)}" for p in self.procs
        )


def wait_http_ok(url: str, proc: Proc, *, timeout_s: float = 60.0) -> None:
    def probe() -> bool:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited: {proc.tail()}")
        try:
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(f"{proc.name} to answer {url}", probe, timeout_s=timeout_s, interval_s=0.1)


def wait_worker_ready(proc: Proc, *, timeout_s: float = 60.0) -> None:
    def probe() -> bool:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited: {proc.tail()}")
        return " ready." in proc.text()

    wait_for(f"{proc.name} to be ready", probe, timeout_s=timeout_s, interval_s=0.1)


#: The tasks that place calls: dial tasks, and dispatches (a dispatch places its first claim).
_TASK = re.compile(
    r"Task dialer\.(?:dial|dispatch_campaign)\[([0-9a-f-]+)\] (received|succeeded|failed|raised)"
)


def dial_tasks_unfinished(log_text: str) -> set[str]:
    """Ids of the tasks that place calls (dial tasks and dispatches) a worker's log shows
    received but never finished."""
    received: set[str] = set()
    finished: set[str] = set()
    for task_id, what in _TASK.findall(log_text):
        (received if what == "received" else finished).add(task_id)
    return received - finished


@contextlib.contextmanager
def collecting_failures(processes: Processes) -> Iterator[None]:
    """On an assertion failure, append the tails of the process logs to the message."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{processes.report()}") from exc


def api_client(base_url: str, headers: Mapping[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers=dict(headers or {}), timeout=15.0, trust_env=False
    )


def json_of(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    return response.json()


def register_number(client: httpx.Client, number: str) -> str:
    """Register ``number`` (E.164) as a phone number of the client's tenant, unless it is
    already; its E.164 number."""
    response = client.post("/phone_number", json={"number": number})
    if response.status_code == 409 and "registered already" in response.text:
        return number
    return str(json_of(response, 201)["number"])
