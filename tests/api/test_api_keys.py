"""Revoking an API key: refused from the next request on, nothing cached."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.services import api_keys
from tests.api.conftest import headers_for


def test_a_revoked_key_answers_401_at_once(app_client: TestClient, engine: Engine) -> None:
    headers = headers_for(engine, "alice")
    kept = headers_for(engine, "alice")
    assert app_client.get("/campaign", headers=headers).status_code == 200
    key = headers["Authorization"].removeprefix("Bearer ")
    with session_factory(engine)() as session, session.begin():
        revoked = api_keys.revoke(session, key[:10], now=datetime.now(UTC))
    assert revoked.revoked_at is not None
    refused = app_client.get("/campaign", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert app_client.get("/campaign", headers=kept).status_code == 200, "other keys still work"
