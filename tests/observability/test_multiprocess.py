"""Multiprocess mode: processes sharing PROMETHEUS_MULTIPROC_DIR are added up by one scrape,
and a process marked dead leaves the live gauges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.observability.scrape import Scraped

ROOT = Path(__file__).resolve().parents[2]

#: Records two dials and reports a role, as a worker process would; prints its pid.
RECORD = """
import os
from dialer.calls.results import DialResult
from dialer.observability import metrics
metrics.set_role("worker")
metrics.dialed(DialResult.DIALED)
metrics.dialed(DialResult.DIALED)
metrics.provider_accepted(0.2)
print(os.getpid())
"""
#: Marks the pids given dead (as the worker does for a pool child), then prints a scrape.
SCRAPE = """
import sys
from dialer.observability.exposition import Scrape, process_exited
for pid in sys.argv[1:]:
    process_exited(int(pid))
sys.stdout.write(Scrape().text().decode())
"""


def run(code: str, directory: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_scrape_adds_up_the_processes_of_the_directory(tmp_path: Path) -> None:
    pids = [run(RECORD, tmp_path).strip() for _ in range(2)]
    scraped = Scraped(run(SCRAPE, tmp_path))
    assert scraped.value("dialer_dials_total", result="dialed") == 4
    assert scraped.value("dialer_dial_latency_seconds_count") == 2
    (info,) = [s for s in scraped.samples if s.name == "dialer_build_info"]
    assert info.labels == {"version": info.labels["version"], "role": "worker"}
    assert info.value == 1

    after = Scraped(run(SCRAPE, tmp_path, *pids))
    assert not after.values("dialer_build_info"), "dead processes leave the live gauges"
    assert after.value("dialer_dials_total", result="dialed") == 4, "counters keep their counts"
