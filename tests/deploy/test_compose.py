"""deploy/docker-compose.yml: valid against the Compose specification (the schema
check-jsonschema ships, offline), and the fleet it describes is the one docs/operations.md
promises."""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from typing import Any

import jsonschema
import pytest

from dialer.queue.celery import SOFT_SHUTDOWN_TIMEOUT_S
from tests.deploy.files import COMPOSE, DEPLOY, load_yaml

DIALER_SERVICES = ("migrate", "api", "scheduler", "worker", "carrier")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, duration
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_valid_against_the_compose_specification() -> None:
    schema_file = (
        importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(_compose())
    ]
    assert errors == []


def test_the_schema_check_can_fail() -> None:
    """The same check rejects a service with a misspelt key: it is not vacuous."""
    schema_file = (
        importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    broken = _compose()
    broken["services"]["worker"]["stop_grace_periode"] = "45s"
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert any("stop_grace_periode" in error.message for error in validator.iter_errors(broken))


def test_redis_never_evicts_and_keeps_an_append_only_file() -> None:
    command = _services()["redis"]["command"]
    pairs = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert pairs["--appendonly"] == "yes"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert "redisdata:/data" in _services()["redis"]["volumes"]


def test_postgres_has_a_volume_and_a_healthcheck() -> None:
    postgres = _services()["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_every_dialer_process_runs_the_same_image_without_root_privileges() -> None:
    services = _services()
    images = {services[name]["image"] for name in DIALER_SERVICES}
    assert len(images) == 1
    for name in DIALER_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]


def test_migration_runs_first_and_once() -> None:
    services = _services()
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "scheduler", "worker"):
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully"
        assert after["redis"]["condition"] == "service_healthy"


def test_roles_and_their_commands_exist() -> None:
    from dialer.cli import app

    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    groups = {group.name for group in app.registered_groups}
    for name in DIALER_SERVICES:
        role = _services()[name]["command"][0]
        assert role in commands | groups, role


def test_two_schedulers_and_scalable_workers() -> None:
    services = _services()
    assert services["scheduler"]["deploy"]["replicas"] == 2
    worker = services["worker"]
    # Scalable: no fixed container name and no published port to collide on.
    assert "container_name" not in worker
    assert "ports" not in worker
    command = worker["command"]
    assert command[0] == "worker"
    assert "%h" in command[command.index("--hostname") + 1]


def test_workers_get_the_soft_shutdown_and_a_margin_before_sigkill() -> None:
    grace_s = _seconds(_services()["worker"]["stop_grace_period"])
    assert grace_s >= SOFT_SHUTDOWN_TIMEOUT_S + 10


def test_api_healthcheck_asks_readiness_on_its_port() -> None:
    api = _services()["api"]
    port = api["command"][api["command"].index("--port") + 1]
    probe = " ".join(api["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in probe
    from dialer.api.routes.health import router

    assert "/readyz" in {route.path for route in router.routes}  # type: ignore[attr-defined]


def test_carrier_simulator_is_a_profile_the_fleet_points_at() -> None:
    services = _services()
    carrier = services["carrier"]
    assert carrier["profiles"] == ["simulator"]
    command = carrier["command"]
    port = command[command.index("--port") + 1]
    env = services["api"]["environment"]
    assert env["DIALER_TWILIO_BASE_URL"].endswith(f"http://carrier:{port}}}")
    # The carrier signs callbacks with the token the dialer checks them with.
    assert command[command.index("--auth-token") + 1] == env["DIALER_TWILIO_AUTH_TOKEN"]
    assert command[command.index("--account-sid") + 1] == env["DIALER_TWILIO_ACCOUNT_SID"]
    api_port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert env["DIALER_PUBLIC_BASE_URL"].endswith(f"http://api:{api_port}}}")


def test_rabbitmq_is_optional() -> None:
    services = _services()
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert services["api"]["depends_on"]["rabbitmq"]["required"] is False


def test_example_passwords_say_so() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    defaults = re.findall(r"\$\{[A-Z_]*(?:PASSWORD|TOKEN)[A-Z_]*:-([^}]*)\}", text)
    assert defaults
    assert all(value.startswith("example-only") for value in defaults), defaults


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker command")
def test_docker_compose_config_accepts_it() -> None:
    plugin = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if plugin.returncode != 0:
        pytest.skip("docker has no compose plugin here")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--profile", "simulator", "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
