"""Every `dialer` command line in the deployment files (Compose commands, Kubernetes args,
systemd ExecStart, the Dockerfile's default) names a real command and real options."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import typer.main

from dialer.cli import app
from tests.deploy.files import COMPOSE, DOCKERFILE, K8S, SYSTEMD, load_yaml, load_yaml_all


def _command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `dialer`) of every dialer command line in the deployment files."""
    lines: list[tuple[str, list[str]]] = []
    services: dict[str, Any] = load_yaml(COMPOSE)["services"]
    for name, service in services.items():
        if service.get("image", "").startswith("${IMAGE"):
            lines.append((f"compose {name}", [str(part) for part in service["command"]]))
    for path in K8S.glob("*.yaml"):
        for doc in load_yaml_all(path):
            template = doc.get("spec", {}).get("template", {})
            for container in template.get("spec", {}).get("containers", []):
                lines.append((f"{path.name} {container['name']}", container["args"]))
    for path in SYSTEMD.glob("*.service"):
        match = re.search(r"^ExecStart=\S+/dialer (.*)$", path.read_text(), re.M)
        assert match, path.name
        lines.append((path.name, shlex.split(match.group(1))))
    cmd = re.search(r"^CMD (.*)$", DOCKERFILE.read_text(), re.M)
    assert cmd
    lines.append(("Dockerfile CMD", json.loads(cmd.group(1))))
    return lines


def _resolve(argv: list[str]) -> tuple[str, Any, list[str]]:
    """The command ``argv`` names (Typer's own click classes: groups have ``commands``)."""
    command: Any = typer.main.get_command(app)
    path = []
    rest = list(argv)
    while hasattr(command, "commands"):
        name = rest.pop(0)
        assert name in command.commands, f"no command {' '.join([*path, name])}"
        command = command.commands[name]
        path.append(name)
    return " ".join(path), command, rest


def test_every_command_line_is_real() -> None:
    lines = _command_lines()
    roles = {_resolve(argv)[0] for _, argv in lines}
    assert {"api", "worker", "scheduler", "db upgrade", "carrier"} <= roles
    for where, argv in lines:
        name, command, rest = _resolve(argv)
        known = {opt for param in command.params for opt in param.opts}
        used = {word.split("=")[0] for word in rest if word.startswith("--")}
        unknown = used - known
        assert unknown == set(), f"{where}: dialer {name} has no {sorted(unknown)}"
