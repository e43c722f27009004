"""deploy/systemd: the units parse, run the dialer's real commands with the settings file,
stop within the worker's soft shutdown plus a margin, restart, and are hardened; where
systemd-analyze exists, systemd itself verifies them."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.queue.celery import SOFT_SHUTDOWN_TIMEOUT_S
from tests.deploy.files import SYSTEMD

DIALER = "/opt/dialer/venv/bin/dialer"
LONG_RUNNING = ("dialer-api.service", "dialer-worker@.service", "dialer-scheduler.service")
UNITS = (*LONG_RUNNING, "dialer-migrate.service")
#: Options every unit must set (the rest of the hardening is welcome, these are required).
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "DynamicUser": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
}


def _unit(name: str) -> configparser.ConfigParser:
    # systemd allows a key more than once (Environment=); the last one is enough here.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text(encoding="utf-8"), source=name)
    return parser


def _seconds(value: str) -> float:
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    return float(number) * units.get(value[len(number) :] or "s", 0)


@pytest.mark.parametrize("name", UNITS)
def test_unit_runs_a_real_dialer_command_with_the_settings_file(name: str) -> None:
    from dialer.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    commands |= {group.name for group in app.registered_groups}
    unit = _unit(name)
    assert unit["Unit"]["Description"]
    service = unit["Service"]
    assert service["EnvironmentFile"] == "/etc/dialer/dialer.env"
    program, role, *_args = service["ExecStart"].split()
    assert program == DIALER
    assert role in commands


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(name: str) -> None:
    service = _unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, key


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_units_restart_and_stop_on_sigterm(name: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert _seconds(service["RestartSec"]) > 0
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "dialer.target"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"


def test_worker_gets_the_soft_shutdown_and_a_margin() -> None:
    service = _unit("dialer-worker@.service")["Service"]
    assert _seconds(service["TimeoutStopSec"]) >= SOFT_SHUTDOWN_TIMEOUT_S + 10
    # SIGTERM to Celery's main process only; it stops its own pool.
    assert service["KillMode"] == "mixed"
    # One worker per instance: its metrics port and its Celery node name from the instance.
    assert service["Environment"] == "DIALER_METRICS_PORT=%i"
    assert "--hostname worker-%i@%H" in service["ExecStart"]


def test_migration_is_a_oneshot_nothing_starts_by_itself() -> None:
    unit = _unit("dialer-migrate.service")
    assert unit["Service"]["Type"] == "oneshot"
    assert unit["Service"]["ExecStart"] == f"{DIALER} db upgrade"
    assert not unit.has_section("Install")
    for name in LONG_RUNNING:
        dependencies = " ".join(_unit(name)["Unit"].get(k, "") for k in ("Requires", "Wants"))
        assert "dialer-migrate" not in dependencies


def test_target_groups_the_units() -> None:
    target = _unit("dialer.target")
    assert target["Install"]["WantedBy"] == "multi-user.target"
    for name in LONG_RUNNING:
        assert _unit(name)["Unit"]["PartOf"] == "dialer.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_verifies_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` on copies whose ExecStart names this interpreter (the real
    path exists only on an installed host): an unknown key or a bad value is reported."""
    paths = []
    for name in (*UNITS, "dialer.target"):
        text = (SYSTEMD / name).read_text(encoding="utf-8").replace(DIALER, sys.executable)
        target = tmp_path / name.replace("@.service", "@9401.service")
        target.write_text(text, encoding="utf-8")
        paths.append(str(target))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = [Path(path).name for path in paths]
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if any(name in line for name in names)
    ]
    assert complaints == []
