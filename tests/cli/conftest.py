"""The operator's ``dialer campaign`` commands, run in process on a real database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dialer.api.schemas.recipients import RecipientIn
from dialer.cli import app
from dialer.db.engine import session_factory
from dialer.policy.open_places import OpenPlace
from dialer.services import campaigns, tenancy
from tests.db import factories

CALLER = "+14155550100"
#: A zone where 15:00 UTC on a weekday is inside legal hours (10:00 in New York).
ZONE = "America/New_York"


@dataclass
class Dialer:
    """``dialer`` in process, on the test's database (embedded: no Redis unless given)."""

    engine: Engine
    env: dict[str, str | None]

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        runner = CliRunner(env={**self.env, **(env or {})})
        return runner.invoke(app, list(args))


@pytest.fixture
def dialer(engine: Engine) -> Dialer:
    return Dialer(
        engine,
        {
            "DIALER_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "DIALER_REDIS_URL": None,
            "DIALER_LOG_LEVEL": "WARNING",
            "TTY_COMPATIBLE": None,
            "COLUMNS": "200",
        },
    )


def tenant(engine: Engine, user_id: str, *numbers: str) -> str:
    """The tenant of ``user_id`` (created), with ``numbers`` registered; its id."""
    with session_factory(engine)() as session, session.begin():
        found = tenancy.ensure_tenant(session, user_id, now=datetime.now(UTC))
        for number in numbers:
            factories.phone_number(session, found.id, number)
        return found.id


def numbers(n: int, start: int = 1000, *, place: OpenPlace | None = None) -> list[str]:
    """``n`` numbers: New York's, or ``place``'s (one whose hours are open, for a campaign
    that dials now)."""
    if place is not None:
        return [place.number(start + i) for i in range(n)]
    return [f"+1212555{start + i:04d}" for i in range(n)]


def create_campaign(
    engine: Engine,
    tenant_id: str,
    phones: Sequence[str] = (),
    *,
    zone: str | None = ZONE,
    **fields: Any,
) -> str:
    """A draft campaign of the tenant calling from :data:`CALLER`, with ``phones`` as its
    recipients, created as the API creates one; its id."""
    values: dict[str, Any] = {
        "name": "Renewals",
        "assistant_id": "asst-1",
        "phone_number_id": CALLER,
        "max_concurrency": 3,
        "retry_policy": {
            "max_attempts": 1,
            "backoff": {"kind": "fixed", "delay": "1s"},
            "jitter": 0,
        },
        "speech_settings": {},
    }
    values.update(fields)
    with session_factory(engine)() as session, session.begin():
        campaign, _ = campaigns.create(
            session,
            tenant_id,
            values,
            now=datetime.now(UTC),
            recipients=[RecipientIn(phone_number=p, time_zone=zone) for p in phones],
        )
        return campaign.id
