"""Print the part of ``requirements.lock`` an image needs, hashes and markers kept verbatim.

``requirements.lock`` pins everything the project is developed with: the runtime
dependencies, the test and lint tools, and the build backend. An image should carry the
runtime alone, and a builder stage the build backend alone, both installed with
``pip install --require-hashes`` from the lock's own pins and hashes. This reads the lock's
``# via`` annotations (which package asked for which) and prints the entries reachable
from a set of roots:

    python deploy/runtime_requirements.py runtime requirements.lock pyproject.toml
    python deploy/runtime_requirements.py build requirements.lock pyproject.toml

``runtime`` starts from ``[project] dependencies`` of ``pyproject.toml``; ``build`` from its
``[build-system] requires``. A package is kept when a root names it or when a kept package
asked for it. The annotations are the union over every extra and platform, so the set may
hold a little more than one platform needs (pip skips an entry whose marker does not match),
never less: pip, run without ``--no-deps``, refuses a dependency missing from the file in
hash-checking mode, so an incomplete set fails the build instead of passing it.

Standard library only: it runs in a bare ``python`` image before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The name at the start of a requirement (PEP 508), before extras, versions or markers.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalized form: ``Typing_Extensions`` and ``typing-extensions`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalize(match.group(1))


@dataclass(frozen=True, slots=True)
class Entry:
    """One pinned package of the lock: its text (pin, marker, hashes) and who asked for it."""

    name: str
    text: str
    via: frozenset[str]


def parse_lock(text: str) -> dict[str, Entry]:
    """The lock's entries by normalized name. ``via`` holds the normalized names of the
    packages that asked for it; the project itself and ``-r`` inputs appear as given."""
    entries: dict[str, Entry] = {}
    block: list[str] = []

    def close() -> None:
        if not block:
            return
        name = requirement_name(block[0])
        pin = [line for line in block if not line.lstrip().startswith("#")]
        via: set[str] = set()
        in_via = False
        for line in block[1:]:
            comment = line.strip()
            if not comment.startswith("#"):
                continue
            comment = comment.lstrip("#").strip()
            if comment.startswith("via"):
                in_via = True
                comment = comment.removeprefix("via").strip()
            if in_via and comment:
                via.add(_via_name(comment))
        entries[name] = Entry(name, "\n".join(pin), frozenset(via))
        block.clear()

    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            close()
            block.append(line)
        elif block and line.strip():
            block.append(line)
    close()
    return entries


def _via_name(comment: str) -> str:
    """``dialer (pyproject.toml)`` -> ``dialer``; ``-r -`` stays as it is."""
    if comment.startswith("-"):
        return comment
    return requirement_name(comment)


def reachable(entries: dict[str, Entry], roots: set[str]) -> list[Entry]:
    """The entries the roots name, and every entry a kept one asked for, in lock order."""
    missing = sorted(roots - entries.keys())
    if missing:
        raise SystemExit(f"not in the lock (run `make lock`): {', '.join(missing)}")
    kept = set(roots)
    grew = True
    while grew:
        grew = False
        for entry in entries.values():
            if entry.name not in kept and entry.via & kept:
                kept.add(entry.name)
                grew = True
    return [entry for entry in entries.values() if entry.name in kept]


def roots(pyproject: dict[str, object], kind: str) -> set[str]:
    if kind == "runtime":
        project = pyproject["project"]
        assert isinstance(project, dict)
        requirements = project["dependencies"]
    elif kind == "build":
        build_system = pyproject["build-system"]
        assert isinstance(build_system, dict)
        requirements = build_system["requires"]
    else:
        raise SystemExit(f"unknown set {kind!r}: runtime or build")
    assert isinstance(requirements, list)
    return {requirement_name(str(requirement)) for requirement in requirements}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    kind, lock_path, pyproject_path = argv
    entries = parse_lock(Path(lock_path).read_text(encoding="utf-8"))
    pyproject = tomllib.loads(Path(pyproject_path).read_text(encoding="utf-8"))
    print(f"# The {kind} part of {Path(lock_path).name} (deploy/runtime_requirements.py).")
    for entry in reachable(entries, roots(pyproject, kind)):
        print(entry.text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
