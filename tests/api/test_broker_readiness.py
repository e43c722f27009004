"""Readiness names Celery's broker when it is not the Redis it already pings (RabbitMQ)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dialer.api.app import create_app
from dialer.db.migrate import upgrade
from dialer.settings import Settings
from tests.e2e.fleet import free_port


def _readiness(tmp_path: Path, redis_url: str, broker_url: str) -> tuple[int, dict[str, str]]:
    database_url = f"sqlite:///{tmp_path / 'dialer.db'}"
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        broker_url=broker_url,
        redis_connect_timeout_s=1.0,
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    return ready.status_code, ready.json()["checks"]


@pytest.mark.timeout(60)
def test_readiness_checks_rabbitmq(tmp_path: Path, redis_url: str, rabbitmq_url: str) -> None:
    status, checks = _readiness(tmp_path, redis_url, rabbitmq_url)
    assert status == 200, checks
    assert checks == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.timeout(60)
def test_readiness_says_the_broker_is_down(tmp_path: Path, redis_url: str) -> None:
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    status, checks = _readiness(tmp_path, redis_url, nobody)
    assert status == 503
    assert checks["redis"] == "ok"
    assert checks["broker"].startswith("error: "), checks
