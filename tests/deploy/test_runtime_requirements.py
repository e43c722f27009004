"""deploy/runtime_requirements.py: the image's part of requirements.lock holds every
runtime dependency (followed through the installed packages' own metadata) and none of the
test or lint tools; the build part holds the build backend."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from types import ModuleType

import pytest
from packaging.requirements import Requirement

from tests.deploy.files import DEPLOY, ROOT

LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "runtime_requirements", DEPLOY / "runtime_requirements.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _selected(kind: str) -> set[str]:
    script = _script()
    entries = script.parse_lock(LOCK.read_text(encoding="utf-8"))
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {entry.name for entry in script.reachable(entries, script.roots(pyproject, kind))}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_closure(roots: list[str]) -> set[str]:
    """What pip would install here for ``roots``: each distribution's requirements, with
    their extras, whose markers hold on this interpreter and platform."""
    seen: set[str] = set()
    pending = [(Requirement(text), frozenset[str]()) for text in roots]
    while pending:
        requirement, _ = pending.pop()
        name = _normalize(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        for text in importlib.metadata.requires(requirement.name) or []:
            child = Requirement(text)
            environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(e) for e in environments):
                pending.append((child, frozenset()))
    return {name for name in seen if "[" not in name}


def test_runtime_part_holds_every_runtime_dependency() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    needed = _installed_closure(dependencies)
    assert needed - _selected("runtime") == set()


@pytest.mark.parametrize(
    "tool", ["pytest", "mypy", "ruff", "schemathesis", "hypothesis", "fakeredis", "setuptools"]
)
def test_runtime_part_leaves_the_tools_out(tool: str) -> None:
    assert tool not in _selected("runtime")


def test_build_part_is_the_build_backend() -> None:
    assert {"setuptools", "wheel"} <= _selected("build")
    assert "celery" not in _selected("build")


def test_entries_keep_their_markers_and_hashes() -> None:
    script = _script()
    lock = """\
# header
alpha==1.0 ; sys_platform == 'win32' \\
    --hash=sha256:aa \\
    --hash=sha256:bb
    # via beta
beta==2.0 \\
    --hash=sha256:cc
    # via
    #   dialer (pyproject.toml)
    #   gamma
gamma==3.0 \\
    --hash=sha256:dd
    # via dialer (pyproject.toml)
"""
    entries = script.parse_lock(lock)
    assert entries["alpha"].via == {"beta"}
    assert entries["beta"].via == {"dialer", "gamma"}
    kept = script.reachable(entries, {"beta"})
    assert [entry.name for entry in kept] == ["alpha", "beta"]
    assert kept[0].text.splitlines() == [
        "alpha==1.0 ; sys_platform == 'win32' \\",
        "    --hash=sha256:aa \\",
        "    --hash=sha256:bb",
    ]
    with pytest.raises(SystemExit, match="delta"):
        script.reachable(entries, {"delta"})
