"""The lock file ``make`` installs from agrees with pyproject.toml, and pins every file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _pins() -> dict[str, tuple[str, list[str]]]:
    """Each pinned name: its version and the hashes listed under it."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), [])
        elif "--hash=sha256:" in line and current:
            pins[current][1].append(line.strip())
    return pins


def _declared() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, extras = pyproject["project"], pyproject["project"]["optional-dependencies"]
    declared = project["dependencies"] + extras["test"] + extras["lint"]
    return [Requirement(r) for r in declared + pyproject["build-system"]["requires"]]


def test_every_declared_dependency_is_pinned_within_its_bounds() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: run make lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside {requirement}: run make lock"
        )


def test_every_pin_carries_hashes() -> None:
    pins = _pins()
    assert len(pins) > 20
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


def test_pins_are_past_known_advisories() -> None:
    pins = _pins()
    floors = {"starlette": "1.3.1", "python-multipart": "0.0.18"}
    for name, floor in floors.items():
        assert Requirement(f"{name}>={floor}").specifier.contains(pins[name][0])
    declared = {canonicalize_name(r.name): r for r in _declared()}
    for name, floor in floors.items():
        assert not declared[name].specifier.contains(_below(floor)), f"{name} allows < {floor}"


def _below(version: str) -> str:
    """A release just below ``version`` (``1.3.1`` -> ``1.3.0``, ``0.0.18`` -> ``0.0.17``)."""
    parts = [int(p) for p in version.split(".")]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] > 0:
            parts[i] -= 1
            break
    return ".".join(str(p) for p in parts)
