"""A 1,000,000-row recipient list imported through the API, against parsing its numbers alone.

Run from the repository root (``make bench``). Everything stays on this machine:

- ``postgresql``: a scratch PostgreSQL database (DIALER_TEST_POSTGRES_URL, else the local
  server), created and dropped. ``dialer api`` (one uvicorn process on 127.0.0.1, embedded
  mode: no Redis) takes a ``ROWS``-row CSV (``phone_number,first_name,plan``; one row in
  ``INVALID_EVERY`` has no valid number, one in ``DUPLICATE_EVERY`` repeats an earlier
  number) as one multipart upload, and imports it in the background; the bench polls the
  list until it is ``ready``. ``rows_per_s`` = rows / (upload sent to list ready).
  ``ceiling_rows_per_s``: the same numbers (every ``CEILING_SAMPLE_EVERY``-th row, in file
  order) through :func:`dialer.phone.to_e164` (parse, validity and type checks: what the
  import does per row) in this process, one thread, nothing else; ``ratio`` =
  rows_per_s / ceiling (target >= 0.5). ``peak_rss_mb``: the API process's resident memory
  high-water mark (Linux's VmHWM) at the end (target < 300 MB). Meanwhile another tenant
  sends ``OTHER_REQUESTS_PER_S`` requests a second (reading its campaigns, adding a number
  to its do-not-call list, reading the list being imported, in turn), each timed here:
  ``other_requests.p99_ms`` (target < 200 ms); every answer must be 2xx.
- ``sqlite``: the same on a SQLite file with ``SQLITE_ROWS`` rows: the wait of the other
  tenant's writes (its do-not-call additions) while the import runs (target: none waits a
  second or more).

``INGEST_ROWS`` and ``INGEST_SQLITE_ROWS`` change the two sizes (a quick trial run). The
other tenant's requests are also timed for ``IDLE_S`` before each upload
(``other_requests_idle``): the machine's own latency, to read the figures during the import
against. The run fails unless the list ends ``ready`` with every row counted (accepted, rejected as
invalid or duplicate). Writes ``bench/results/ingest.json`` and prints it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _server import free_port, server
from _shared import scratch_database

from dialer.db.engine import make_engine, session_factory
from dialer.db.migrate import upgrade
from dialer.errors import InvalidPhoneNumber
from dialer.phone import to_e164
from dialer.services.tenancy import issue_key

ROWS = int(os.environ.get("INGEST_ROWS", 1_000_000))
SQLITE_ROWS = int(os.environ.get("INGEST_SQLITE_ROWS", 200_000))
INVALID_EVERY = 100
DUPLICATE_EVERY = 250
CEILING_SAMPLE_EVERY = 4
OTHER_REQUESTS_PER_S = 20
POLL_S = 0.5
IDLE_S = 15.0
IMPORT_TIMEOUT_S = 1_800.0
LOG_LEVEL = "WARNING"
RESULTS = Path("bench/results/ingest.json")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "list.csv"
        expected = write_csv(big, ROWS)
        ceiling = ceiling_rate(big)
        with scratch_database() as url:
            pg = run("postgresql", url, big, expected, ceiling)
        small = Path(tmp) / "small.csv"
        small_expected = write_csv(small, SQLITE_ROWS)
        sqlite = run(
            "sqlite", f"sqlite:///{Path(tmp) / 'dialer.db'}", small, small_expected, ceiling
        )
    result = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "server": f"dialer api, 1 uvicorn process, embedded mode, log level {LOG_LEVEL.lower()}",
        "postgresql": pg,
        "sqlite": sqlite,
        "met": pg["met"] and sqlite["met"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


# -- the file and the ceiling ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    rows: int
    accepted: int
    rejected: int
    size_mb: float


def number(i: int) -> str:
    """Row ``i``'s number: unique, valid (New York and Chicago numbers), or not."""
    if i % INVALID_EVERY == INVALID_EVERY - 1:
        return f"555-01{i % 100:02d}x"
    if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
        i -= 1
    area = ("212", "312")[i // 8_000_000 % 2]
    return f"+1{area}{2_000_000 + i % 8_000_000:07d}"


def write_csv(path: Path, rows: int) -> Expected:
    invalid = duplicate = 0
    with path.open("w", newline="") as out:
        out.write("phone_number,first_name,plan\n")
        for i in range(rows):
            out.write(f"{number(i)},Name{i},{('gold', 'silver', 'bronze')[i % 3]}\n")
            if i % INVALID_EVERY == INVALID_EVERY - 1:
                invalid += 1
            elif i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
                duplicate += 1
    rejected = invalid + duplicate
    return Expected(rows, rows - rejected, rejected, round(path.stat().st_size / 1e6, 1))


def ceiling_rate(path: Path) -> float:
    """Rows per second :func:`to_e164` takes in, one thread, over a sample of the file."""
    with path.open() as source:
        next(source)
        numbers = [
            line.split(",", 1)[0] for i, line in enumerate(source) if i % CEILING_SAMPLE_EVERY == 0
        ]
    started = time.perf_counter()
    for raw in numbers:
        with contextlib.suppress(InvalidPhoneNumber):
            to_e164(raw)
    return len(numbers) / (time.perf_counter() - started)


# -- one run -------------------------------------------------------------------------------


def run(
    backend: str, url: str, csv_path: Path, expected: Expected, ceiling: float
) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            uploader = issue_key(session, "ingest", now=datetime.now(UTC))
            other = issue_key(session, "other", now=datetime.now(UTC))
    finally:
        engine.dispose()
    headers = {
        "uploader": {"Authorization": f"Bearer {uploader.key}", "X-User-ID": "ingest"},
        "other": {"Authorization": f"Bearer {other.key}", "X-User-ID": "other"},
    }
    port = free_port()
    env = {
        **os.environ,
        "DIALER_DATABASE_URL": url,
        "DIALER_LOG_LEVEL": LOG_LEVEL,
        "DIALER_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("DIALER_REDIS_URL", None)
    command = [sys.executable, "-m", "dialer", "api", "--host", "127.0.0.1", "--port", str(port)]
    with server(command, env, port) as api:
        base = f"http://127.0.0.1:{port}"
        rss_before_mb = api.memory_mb("VmRSS")
        idle = OtherLoad(base, headers["other"])
        idle.start()
        time.sleep(IDLE_S)
        idle.stop()
        load = OtherLoad(base, headers["other"])
        load.start()
        try:
            imported = _import(base, headers["uploader"], csv_path, load)
        finally:
            load.stop()
        peak_rss_mb = api.memory_mb("VmHWM")
    _check(backend, imported["list"], expected)
    rate = expected.rows / imported["import_s"]
    latencies = sorted(load.latencies_ms)
    writes = sorted(load.write_latencies_ms)
    result: dict[str, Any] = {
        "rows": expected.rows,
        "file_mb": expected.size_mb,
        "accepted": imported["list"]["accepted"],
        "rejected": imported["list"]["rejected_count"],
        "upload_s": round(imported["upload_s"], 2),
        "import_s": round(imported["import_s"], 1),
        "rows_per_s": round(rate),
        "rss_before_mb": rss_before_mb,
        "peak_rss_mb": peak_rss_mb,
        "other_requests": {
            "count": len(latencies),
            "p50_ms": round(_percentile(latencies, 0.5), 1),
            "p99_ms": round(_percentile(latencies, 0.99), 1),
            "max_ms": round(latencies[-1], 1),
            "writes": len(writes),
            "writes_max_ms": round(writes[-1], 1),
            "non_2xx": load.failures,
        },
        # The same requests for IDLE_S before the upload: this machine's own latency.
        "other_requests_idle": {
            "count": len(idle.latencies_ms),
            "p50_ms": round(_percentile(sorted(idle.latencies_ms), 0.5), 1),
            "p99_ms": round(_percentile(sorted(idle.latencies_ms), 0.99), 1),
            "non_2xx": idle.failures,
        },
    }
    if backend == "postgresql":
        ratio = rate / ceiling
        result |= {
            "ceiling_rows_per_s": round(ceiling),
            "ratio": round(ratio, 3),
            "target_ratio": 0.5,
            "target_peak_rss_mb": 300,
            "target_p99_ms": 200,
            "met": ratio >= 0.5
            and peak_rss_mb < 300
            and result["other_requests"]["p99_ms"] < 200
            and not load.failures
            and not idle.failures,
        }
    else:
        result |= {
            "target_writes_max_ms": 1000,
            "met": writes[-1] < 1000 and not load.failures and not idle.failures,
        }
    return result


def _import(base: str, headers: dict[str, str], csv_path: Path, load: OtherLoad) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=headers, timeout=600.0) as client:
        started = time.perf_counter()
        with csv_path.open("rb") as upload:
            answer = client.post(
                "/recipient_list",
                data={"name": "Bench"},
                files={"file": ("list.csv", upload, "text/csv")},
            )
        upload_s = time.perf_counter() - started
        if answer.status_code != 202:
            raise RuntimeError(f"upload answered {answer.status_code}: {answer.text}")
        list_id = answer.json()["id"]
        load.list_id = list_id
        deadline = time.monotonic() + IMPORT_TIMEOUT_S
        while time.monotonic() < deadline:
            listed = client.get(f"/recipient_list/{list_id}").json()
            if listed["state"] != "importing":
                return {
                    "list": listed,
                    "upload_s": upload_s,
                    "import_s": time.perf_counter() - started,
                }
            time.sleep(POLL_S)
    raise RuntimeError(f"the import did not end in {IMPORT_TIMEOUT_S} s")


def _check(backend: str, listed: dict[str, Any], expected: Expected) -> None:
    got = (listed["state"], listed["rows_read"], listed["accepted"], listed["rejected_count"])
    want = ("ready", expected.rows, expected.accepted, expected.rejected)
    if got != want:
        raise RuntimeError(f"{backend}: the list ended {got}, expected {want}")


# -- the other tenant's requests -------------------------------------------------------------


@dataclass
class OtherLoad:
    """Another tenant's requests at a steady pace, on a thread of their own, each timed."""

    base: str
    headers: dict[str, str]
    list_id: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    write_latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        period_s = 1.0 / OTHER_REQUESTS_PER_S
        n = 0
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=60.0) as client:
            while not self._stop.wait(period_s):
                n += 1
                kind = n % 3
                started = time.perf_counter()
                if kind == 0:
                    number = f"+1617{2_000_000 + n:07d}"
                    answer = client.post("/suppression", json={"phone_number": number})
                elif kind == 1 or self.list_id is None:
                    answer = client.get("/campaign")
                else:  # another tenant's list: a 404, answered like any read
                    answer = client.get(f"/recipient_list/{self.list_id}")
                elapsed_ms = (time.perf_counter() - started) * 1000
                expected = 404 if kind == 2 and self.list_id is not None else None
                if answer.status_code != expected and not 200 <= answer.status_code < 300:
                    self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
                self.latencies_ms.append(elapsed_ms)
                if kind == 0:
                    self.write_latencies_ms.append(elapsed_ms)


# -- the server ------------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


if __name__ == "__main__":
    main()
