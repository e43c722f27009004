from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.engine import session_factory
from dialer.services.tenancy import issue_key
from dialer.settings import Settings
from tests.db import factories


class ManualClock:
    """The API's clock, moved by tests."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))


@pytest.fixture
def app_client(engine: Engine, clock: ManualClock) -> Iterator[TestClient]:
    """An httpx client on the ASGI app, over the test database, unauthenticated."""
    app = create_app(Settings(database_url=str(engine.url)), engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


#: The caller number :func:`campaign_body` uses, registered to ``alice`` by ``client``.
CALLER = "+14155550100"


def headers_for(engine: Engine, user_id: str, *numbers: str) -> dict[str, str]:
    """Headers with a new key of ``user_id``, whose tenant has ``numbers`` (E.164) registered
    as its phone numbers."""
    with session_factory(engine)() as session, session.begin():
        issued = issue_key(session, user_id, now=datetime.now(UTC))
        for number in numbers:
            factories.phone_number(session, issued.tenant_id, number)
    return {"Authorization": f"Bearer {issued.key}", "X-User-ID": user_id}


@pytest.fixture
def client(app_client: TestClient, engine: Engine) -> TestClient:
    """Authenticated as tenant ``alice``, who has :data:`CALLER` registered."""
    app_client.headers.update(headers_for(engine, "alice", CALLER))
    return app_client


@pytest.fixture
def bob(engine: Engine) -> dict[str, str]:
    """Headers of another tenant."""
    return headers_for(engine, "bob")


def campaign_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "Renewals",
        "assistant_id": "asst_123",
        "phone_number_id": CALLER,
        "caller_id_number": CALLER,
        "max_concurrency": 5,
    }
    body.update(overrides)
    return body
