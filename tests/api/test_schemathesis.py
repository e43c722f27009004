"""Property-based run over the generated OpenAPI: no input produces a 5xx or breaks the schema."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.settings import Settings
from tests.api.conftest import ManualClock, headers_for

#: Generated requests per operation (and per generation mode).
EXAMPLES = 12


def test_no_input_breaks_the_api(engine: Engine, clock: ManualClock) -> None:
    app = create_app(Settings(database_url=str(engine.url)), engine=engine, clock=clock)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = headers_for(engine, "fuzz")
    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(headers={**(case.headers or {}), **auth}, checks=checks)

        exercise()
