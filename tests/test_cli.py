"""The console script, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import BACKENDS, scratch_database_url

#: Runs the dialer's processes.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
DIALER = [sys.executable, "-m", "dialer"]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    environment.update(env)
    return subprocess.run(
        args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url, drop = scratch_database_url(request.param, tmp_path)
    try:
        yield url
    finally:
        drop()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_builds_the_schema(empty_database: str, tmp_path: Path) -> None:
    result = run([*DIALER, "db", "upgrade"], tmp_path, DIALER_DATABASE_URL=empty_database)
    assert result.returncode == 0, result.stderr
    assert {"campaigns", "recipients", "call_attempts"} <= _tables(empty_database)


def test_alembic_upgrade_head_from_the_repository(empty_database: str) -> None:
    alembic = str(Path(sys.executable).parent / "alembic")
    result = run([alembic, "upgrade", "head"], ROOT, DIALER_DATABASE_URL=empty_database)
    assert result.returncode == 0, result.stderr
    assert "recipients" in _tables(empty_database)


def test_demo_runs_a_whole_campaign_on_the_embedded_defaults(tmp_path: Path) -> None:
    result = run([*DIALER, "demo", "--recipients", "12"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dialer.db").exists()
    assert "campaign completed (campaign.ended.success)" in result.stdout
    assert "skipped    unknown-time-zone" in result.stdout
    assert "not added: +13035550199 (suppressed)" in result.stdout
    assert "counters match the database: yes" in result.stdout
    peak = int(result.stdout.split("peak in flight ")[1].split("/")[0])
    assert 1 <= peak <= 5


def test_bad_settings_stop_with_the_variable_named(tmp_path: Path) -> None:
    result = run([*DIALER, "settings"], tmp_path, DIALER_DATABASE_URL="mysql://x/y")
    assert result.returncode == 2
    assert "DIALER_DATABASE_URL" in result.stderr


def test_settings_are_printed_with_secrets_masked(tmp_path: Path) -> None:
    result = run(
        [*DIALER, "settings"],
        tmp_path,
        DIALER_PROVIDER="twilio",
        DIALER_TWILIO_ACCOUNT_SID="AC1",
        DIALER_TWILIO_AUTH_TOKEN="hunter2",
    )
    assert result.returncode == 0, result.stderr
    assert '"provider": "twilio"' in result.stdout
    assert "hunter2" not in result.stdout


def test_settings_hide_the_passwords_in_urls(tmp_path: Path) -> None:
    result = run(
        [*DIALER, "settings"],
        tmp_path,
        DIALER_DATABASE_URL="postgresql+psycopg://dialer:pg-s3cret@db.internal:5432/dialer",
        DIALER_REDIS_URL="redis://:redis-s3cret@cache.internal:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "postgresql+psycopg://dialer:***@db.internal:5432/dialer" in result.stdout
    assert "redis://:***@cache.internal:6379/0" in result.stdout


@pytest.fixture
def upgraded_database(tmp_path: Path) -> Iterator[str]:
    """A SQLite database with the schema built by ``dialer db upgrade`` (the service tests
    cover PostgreSQL)."""
    url, drop = scratch_database_url("sqlite", tmp_path)
    try:
        result = run([*DIALER, "db", "upgrade"], tmp_path, DIALER_DATABASE_URL=url)
        assert result.returncode == 0, result.stderr
        yield url
    finally:
        drop()


def test_tenant_limits_are_set_shown_and_cleared(upgraded_database: str, tmp_path: Path) -> None:
    def dialer(*args: str) -> subprocess.CompletedProcess[str]:
        return run([*DIALER, *args], tmp_path, DIALER_DATABASE_URL=upgraded_database)

    missing = dialer("tenant", "set", "--user-id", "acme", "--max-cps", "2")
    assert missing.returncode == 1
    assert "no tenant has the user id 'acme'" in missing.stderr
    created = dialer(
        "tenant",
        "set",
        "--user-id",
        "acme",
        "--max-cps",
        "2.5",
        "--max-concurrency",
        "20",
        "--create",
    )
    assert created.returncode == 0, created.stderr
    assert "tenant acme (created): max_concurrency 20, max_cps 2.5" in created.stdout
    cleared = dialer("tenant", "set", "--user-id", "acme", "--max-concurrency", "none")
    assert cleared.returncode == 0, cleared.stderr
    assert "max_concurrency none, max_cps 2.5" in cleared.stdout

    shown = dialer("tenant", "show", "--user-id", "acme")
    assert shown.returncode == 0, shown.stderr
    assert "max_concurrency  none" in shown.stdout
    assert "max_cps          2.5" in shown.stdout
    assert "api keys         0 active, 0 revoked" in shown.stdout
    as_json = json.loads(dialer("tenant", "show", "--user-id", "acme", "--json").stdout)
    assert (as_json["max_concurrency"], as_json["max_cps"]) == (None, 2.5)
    assert as_json["campaigns"] == {}
    assert "frequency caps   3 a day, 7 a week, quiet after an answer off" in shown.stdout

    capped = dialer(
        "tenant", "set", "--user-id", "acme",
        "--attempts-per-day", "2", "--quiet-days-after-answer", "30",
    )  # fmt: skip
    assert capped.returncode == 0, capped.stderr
    assert "frequency caps 2 a day, 7 a week, quiet after an answer 30 days" in capped.stdout
    caps = json.loads(dialer("tenant", "show", "--user-id", "acme", "--json").stdout)
    assert caps["frequency_caps"] == {
        "attempts_per_day": 2,
        "attempts_per_week": 7,
        "quiet_days_after_answer": 30,
        "own": {"attempts_per_day": 2, "attempts_per_week": None, "quiet_days_after_answer": 30},
    }
    reset = dialer("tenant", "set", "--user-id", "acme", "--attempts-per-day", "default")
    assert "frequency caps 3 a day, 7 a week, quiet after an answer 30 days" in reset.stdout


#: One of each kind (every bad value is in tests/app_services/test_tenant_limits.py).
BAD_LIMITS = [
    (["--max-cps", "0"], "--max-cps: must be > 0"),
    (["--max-concurrency", "2.5"], "--max-concurrency: must be a whole number"),
    (["--attempts-per-day", "0"], "--attempts-per-day: must be between 1"),
    (["--quiet-days-after-answer", "x"], "--quiet-days-after-answer: must be a whole number"),
    ([], "give --max-concurrency, --max-cps, --attempts-per-day"),
]


def test_bad_tenant_limits_are_refused_and_change_nothing(
    upgraded_database: str, tmp_path: Path
) -> None:
    env = {"DIALER_DATABASE_URL": upgraded_database}
    setup = [*DIALER, "tenant", "set", "--user-id", "acme", "--max-cps", "3", "--create"]
    assert run(setup, tmp_path, **env).returncode == 0
    for args, message in BAD_LIMITS:
        result = run([*DIALER, "tenant", "set", "--user-id", "acme", *args], tmp_path, **env)
        assert result.returncode == 2, args
        assert message in result.stderr, args
    shown = run([*DIALER, "tenant", "show", "--user-id", "acme", "--json"], tmp_path, **env)
    assert json.loads(shown.stdout)["max_cps"] == 3.0
