"""Several scheduler processes on one PostgreSQL database: no recipient is claimed twice,
and a scheduler killed between commit and hand-off leaves nothing stuck or doubled."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from dialer.calls import counters
from dialer.db.engine import make_engine, session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.policy.open_places import place_open
from dialer.services import campaigns, tenancy
from tests.conftest import scratch_database_url
from tests.db import factories

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]


class _Row:
    def __init__(self, number: str) -> None:
        self.phone_number = number
        self.metadata: dict[str, object] = {}
        self.assistant_overrides: dict[str, object] = {}
        self.time_zone: str | None = None
        self.region: str | None = None


@pytest.fixture
def pg(tmp_path: Path, postgres_url: str) -> Iterator[str]:
    url, drop = scratch_database_url("postgresql", tmp_path)
    upgrade(url)
    try:
        yield url
    finally:
        drop()


def _campaign(url: str, n: int, max_concurrency: int) -> str:
    engine = make_engine(url)
    now = datetime.now(UTC)
    place = place_open(now, for_at_least=timedelta(hours=1))
    with session_factory(engine)() as session, session.begin():
        tenant = tenancy.ensure_tenant(session, "replicas", now=now)
        factories.phone_number(session, tenant.id, "+14155550100")
        campaign, _ = campaigns.create(
            session,
            tenant.id,
            {
                "name": "Replicas",
                "assistant_id": "a",
                "phone_number_id": "+14155550100",
                "max_concurrency": max_concurrency,
                "retry_policy": {"max_attempts": 1},
                "speech_settings": {},
            },
            now=now,
            # Numbers of a place inside its calling hours now: tests run at any hour.
            recipients=[_Row(place.number(i)) for i in range(n)],
        )
        campaigns.act(session, tenant.id, campaign.id, CampaignAction.START, now=now)
        campaign_id = campaign.id
    engine.dispose()
    return campaign_id


def _replica(
    url: str, redis_url: str, prefix: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.dispatching.replica",
            url,
            redis_url,
            prefix,
            str(log),
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _check(url: str, campaign_id: str, dialed: list[int], n: int) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        attempts = list(session.scalars(sa.select(CallAttempt)))
        per_recipient = Counter(a.recipient_id for a in attempts)
        statuses = Counter(session.scalars(sa.select(Recipient.status)))
        assert counters.read(session, [campaign_id])[campaign_id] == counters.truth(
            session, campaign_id
        )
    engine.dispose()
    assert max(Counter(dialed).values()) == 1, "an attempt was dialed twice"
    dialed_recipients = Counter(a.recipient_id for a in attempts if a.id in set(dialed))
    assert len(dialed_recipients) == n
    assert max(dialed_recipients.values()) == 1
    assert statuses == {RecipientStatus.DONE: n}
    assert set(per_recipient.values()) == {1}, "a re-sent claim reuses its attempt"


def test_two_schedulers_never_claim_a_recipient_twice(
    pg: str, redis_url: str, tmp_path: Path
) -> None:
    n = 600
    campaign_id = _campaign(pg, n, max_concurrency=40)
    prefix = f"test:{uuid.uuid4().hex}:"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_replica(pg, redis_url, prefix, log) for log in logs]
    try:
        assert [p.wait(timeout=200) for p in procs] == [0, 0]
    finally:
        for p in procs:
            p.kill()
    dialed = [int(x) for log in logs if log.exists() for x in log.read_text().split()]
    assert all(log.exists() and log.read_text() for log in logs), "both replicas did work"
    engine = make_engine(pg)
    with session_factory(engine)() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) == n
    engine.dispose()
    _check(pg, campaign_id, dialed, n)
    client = redis.Redis.from_url(redis_url)
    left = {key.decode() for key in client.scan_iter(f"{prefix}*")}
    assert left <= {f"{prefix}~built"}, "no slot leaked"


def test_scheduler_killed_between_commit_and_handoff(
    pg: str, redis_url: str, tmp_path: Path
) -> None:
    n = 50
    campaign_id = _campaign(pg, n, max_concurrency=10)
    prefix = f"test:{uuid.uuid4().hex}:"
    crashed = _replica(pg, redis_url, prefix, tmp_path / "crashed.log", "crash")
    assert crashed.wait(timeout=60) == -9
    engine = make_engine(pg)
    with session_factory(engine)() as session:
        unsent = session.scalar(
            sa.select(sa.func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.enqueued_at.is_(None))
        )
    engine.dispose()
    assert unsent, "the crash left committed, unsent claims"
    survivor = _replica(pg, redis_url, prefix, tmp_path / "survivor.log")
    try:
        assert survivor.wait(timeout=120) == 0
    finally:
        survivor.kill()
    dialed = [int(x) for x in (tmp_path / "survivor.log").read_text().split()]
    assert not (tmp_path / "crashed.log").exists()
    _check(pg, campaign_id, dialed, n)
    client = redis.Redis.from_url(redis_url)
    left = {key.decode() for key in client.scan_iter(f"{prefix}*")}
    assert left <= {f"{prefix}~built"}, "no slot leaked"
