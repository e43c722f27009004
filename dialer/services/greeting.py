"""The opening message a recipient hears, from the campaign's template and its metadata."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def render(template: str | None, metadata: Mapping[str, Any]) -> str:
    """``{{first_name}}`` (or ``{{metadata.first_name}}``) replaced by the recipient's value.

    A placeholder without a value renders as nothing rather than as braces read aloud.
    """
    if not template:
        return ""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).removeprefix("metadata.")
        found = metadata.get(name)
        return "" if found is None else str(found)

    return " ".join(_PLACEHOLDER.sub(value, template).split())
