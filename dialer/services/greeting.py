"""Message templates: ``{{first_name}}`` placeholders filled from a recipient's metadata.

Templates are checked when a campaign is saved (syntax, and that every recipient has every
variable), so a call never reaches a recipient with a half-rendered message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dialer.textsafety import xml_safe

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}")
_BRACES = re.compile(r"\{\{|\}\}")


def _name(raw: str) -> str:
    return raw.removeprefix("metadata.")


def variables(template: str | None) -> frozenset[str]:
    """The metadata keys a template uses."""
    if not template:
        return frozenset()
    return frozenset(_name(m.group(1)) for m in _PLACEHOLDER.finditer(template))


def check(template: str | None) -> str | None:
    """None when well formed, else what is wrong (an unclosed or malformed placeholder)."""
    if not template:
        return None
    stripped = _PLACEHOLDER.sub("", template)
    stray = _BRACES.search(stripped)
    if stray is not None:
        near = stripped[max(0, stray.start() - 10) : stray.end() + 10]
        return f"malformed placeholder near {near!r}; use {{{{name}}}}"
    for name in variables(template):
        if "." in name:
            return (
                f"unknown placeholder {{{{{name}}}}}: use a metadata key, e.g. {{{{first_name}}}}"
            )
    return None


def missing(template: str | None, metadata: Mapping[str, Any]) -> list[str]:
    """The template's variables this metadata lacks (sorted)."""
    return sorted(v for v in variables(template) if metadata.get(v) is None)


def render(template: str | None, metadata: Mapping[str, Any]) -> str:
    """``{{first_name}}`` (or ``{{metadata.first_name}}``) replaced by the recipient's value."""
    if not template:
        return ""

    def value(match: re.Match[str]) -> str:
        found = metadata.get(_name(match.group(1)))
        # Recipient data is free text: what XML cannot carry is dropped, not the call.
        return "" if found is None else xml_safe(str(found))

    return " ".join(_PLACEHOLDER.sub(value, template).split())
