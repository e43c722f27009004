"""Chaos: the whole fleet dials three campaigns while its parts are killed and restarted.

The bounded run (a few minutes) is part of the normal suite; the soak (more recipients, the
faults in several rounds) runs with ``DIALER_CHAOS_SOAK=1``. Run with ``-s`` to see the
figures (peaks against limits, recovery after each fault, completion time); they are also
written to ``chaos-report.txt`` in the test's temporary directory, next to the fleet's logs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dialer.db.engine import make_engine
from tests.chaos import checks, figures
from tests.chaos import logs as logs_module
from tests.chaos.evidence import gather
from tests.chaos.fleet import chaos_fleet, supported_settings
from tests.chaos.scenario import Chaos
from tests.chaos.servers import Servers
from tests.chaos.workload import TENANT_ONE, TENANT_TWO, create_campaigns, specs
from tests.e2e.fleet import collecting_failures

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SOAK = os.environ.get("DIALER_CHAOS_SOAK", "") == "1"
#: After the last fault, how long the campaigns get to finish in the bounded run.
COMPLETION_TIMEOUT_S = 150.0


@pytest.mark.timeout(480)
def test_chaos_bounded(chaos_servers: Servers, tmp_path: Path) -> None:
    run_chaos(
        chaos_servers, tmp_path, scale=1.0, rounds=1, completion_timeout_s=COMPLETION_TIMEOUT_S
    )


@pytest.mark.skipif(not SOAK, reason="the soak runs with DIALER_CHAOS_SOAK=1")
@pytest.mark.timeout(3600)
def test_chaos_soak(chaos_servers: Servers, tmp_path: Path) -> None:
    run_chaos(chaos_servers, tmp_path, scale=5.0, rounds=4, completion_timeout_s=900.0)


def run_chaos(
    servers: Servers, tmp: Path, *, scale: float, rounds: int, completion_timeout_s: float
) -> None:
    began = time.monotonic()
    logs = tmp / "logs"
    logs.mkdir()
    report_lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        report_lines.append(line)

    with chaos_fleet(
        servers.postgres, servers.redis, logs, user_ids=(TENANT_ONE, TENANT_TWO)
    ) as fleet:
        say(f"[chaos] fleet up in {time.monotonic() - began:.1f}s; settings {supported_settings()}")
        with collecting_failures(fleet.processes):
            campaigns = create_campaigns(fleet, specs(scale))
            chaos = Chaos(fleet, campaigns, log=say)
            for round_ in range(rounds):
                chaos.run_all(first_round=round_ == 0)
                if chaos.await_completion(timeout_s=0):
                    break
            completed = chaos.await_completion(completion_timeout_s)
            chaos.quiesce()
        say(f"[chaos] campaigns {'completed' if completed else 'still running at the deadline'}")
        from_logs = logs_module.read(fleet)
        engine = make_engine(servers.postgres.url)
        try:
            evidence = gather(engine, fleet.carrier.base_url, [c.id for c in campaigns])
        finally:
            engine.dispose()
        verdicts = [
            checks.check_concurrency(evidence, campaigns, chaos.record),
            checks.check_one_dial_per_attempt(evidence, campaigns),
            checks.check_terminal(evidence, campaigns),
            checks.check_counts(
                evidence, campaigns, fleet.log_lines("scheduler", "drift in campaign")
            ),
            checks.check_suppression(evidence, chaos.record),
            checks.check_windows(evidence, campaigns, chaos.record),
            checks.check_processes(chaos.record),
            checks.check_outbox(from_logs.resent, chaos.record),
        ]
        for line in figures.report(evidence, chaos.record, [c.id for c in campaigns]):
            say(f"[chaos] {line}")
        for line in from_logs.lines():
            say(f"[chaos] {line}")
        for verdict in verdicts:
            say(verdict.render())
        say(f"[chaos] wall time {time.monotonic() - began:.1f}s")
        (tmp / "chaos-report.txt").write_text("\n".join(report_lines) + "\n")
        failed = [v for v in verdicts if not v.passed]
        assert not failed, "\n".join(v.render() for v in failed)
