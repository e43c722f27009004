"""Property-based run over the generated OpenAPI document, with every schemathesis check and
every phase it has (examples, coverage, fuzzing, stateful): no input produces a server error
or an answer the document does not describe. Operations are discovered from the document.

``DIALER_FUZZ_EXAMPLES`` (default 5) sets the examples generated per operation and phase:
e.g. ``DIALER_FUZZ_EXAMPLES=200 pytest tests/api/test_schemathesis.py -s`` for a longer
run; the totals are printed either way.

In the default run the coverage phase (the boundary values of every field: about 1,800
cases and a minute, whatever the examples) runs on PostgreSQL only, the production
database; examples, fuzzing and the stateful phase run on both. A longer run has every phase
on both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.api.schemas.common import SERVER_CHECKS
from dialer.settings import Settings
from tests.api.conftest import ManualClock, headers_for

EXAMPLES = int(os.environ.get("DIALER_FUZZ_EXAMPLES", "5"))
LONGER_RUN = "DIALER_FUZZ_EXAMPLES" in os.environ

#: Statuses a schema-valid request may get. 422 is among them because the server checks
#: what JSON Schema cannot state (that a phone number exists in its country's numbering
#: plan, that a cursor is one the API returned, that every recipient has the variables the
#: opening message uses); the document marks those fields (``x-server-checks``), and
#: :func:`schema_valid_refused_only_on_checked_fields` fails a 422 that names any other.
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]


@schemathesis.check
def schema_valid_refused_only_on_checked_fields(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A schema-valid request answered 422 must name only fields the document marks as
    checked beyond their schema: anything else is a rule the schema should state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    checked = _checked_names(case.operation.schema.raw_schema)
    detail = response.json().get("detail", [])
    unchecked = [d for d in detail if _leaf(d["field"]) not in checked]
    if unchecked:
        raise AssertionError(f"schema-valid request refused on unmarked fields: {unchecked}")
    return None


def _leaf(field: str) -> str:
    """``recipients.0.phone_number`` -> ``phone_number``: the name a schema gives it."""
    names = [part for part in field.split(".") if not part.isdigit()]
    return names[-1] if names else field


_CHECKED: dict[int, frozenset[str]] = {}


def _checked_names(document: dict[str, Any]) -> frozenset[str]:
    """Names of the properties and parameters the document marks ``x-server-checks``."""
    if id(document) not in _CHECKED:
        found: set[str] = set()
        stack: list[Any] = [document]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                if "in" in node and SERVER_CHECKS in node.get("schema", {}):
                    found.add(node["name"])
                for name, prop in (node.get("properties") or {}).items():
                    variants = [prop, *prop.get("anyOf", [])] if isinstance(prop, dict) else []
                    if any(SERVER_CHECKS in variant for variant in variants):
                        found.add(name)
                stack.extend(node.values())
        _CHECKED[id(document)] = frozenset(found)
    return _CHECKED[id(document)]


@dataclass
class Totals:
    cases: int = 0
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


# About a minute per database at the default size; a larger run has no time limit.
@pytest.mark.timeout(0 if LONGER_RUN else 400)
def test_no_input_breaks_the_api(engine: Engine, clock: ManualClock) -> None:
    app = create_app(Settings(database_url=str(engine.url)), engine=engine, clock=clock)
    config = SchemathesisConfig.from_dict(
        {
            "headers": headers_for(engine, "fuzz"),
            "checks": {
                "enabled": True,  # every check, stateful ones included
                "positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES},
            },
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "phases": {"coverage": {"enabled": LONGER_RUN or engine.dialect.name == "postgresql"}},
            "suppress-health-check": ["all"],
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    totals = run(schema)
    print(
        f"\nschemathesis on {engine.dialect.name}: {totals.cases} cases, "
        f"{len(totals.failures)} distinct failures, {len(totals.errors)} errors"
    )
    report = [
        f"{label} [{check}] {title}\n{sample}"
        for (label, check, title), sample in totals.failures.items()
    ]
    assert not totals.errors, "\n".join(totals.errors)
    assert not report, "\n\n".join(report)
    assert totals.cases > len(operations)


def run(schema: schemathesis.schemas.BaseSchema) -> Totals:
    """Run every phase; each distinct failure (operation, check, title) with a reproduction."""
    totals = Totals()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            totals.cases += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    info = check.failure_info
                    if info is None:
                        continue
                    case = recorder.cases[case_id].value
                    key = (f"{case.method} {case.path}", check.name, info.failure.title)
                    message = (info.failure.message or "").strip()
                    totals.failures.setdefault(key, f"{message}\n{info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            totals.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return totals
