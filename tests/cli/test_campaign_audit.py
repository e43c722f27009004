"""``dialer campaign timeline`` and ``dialer campaign preview``: what they print, for whom."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import Recipient
from tests.cli.conftest import CALLER, Dialer, create_campaign, numbers, tenant


def _recipients(engine: Engine, campaign_id: str) -> list[int]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(
                sa.select(Recipient.id)
                .where(Recipient.campaign_id == campaign_id)
                .order_by(Recipient.id)
            )
        )


def test_timeline_prints_a_recipients_decisions(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    tenant(engine, "bob")
    campaign_id = create_campaign(engine, alice, numbers(2))
    assert dialer("campaign", "start", campaign_id, "--user-id", "alice").exit_code == 0
    assert dialer("campaign", "stop", campaign_id, "--user-id", "alice").exit_code == 0
    first = _recipients(engine, campaign_id)[0]

    result = dialer("campaign", "timeline", campaign_id, str(first), "--user-id", "alice")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["at", "kind", "reason", "until", "attempt", "facts"]
    assert [row.split("\t")[1:3] for row in rows] == [["canceled", "campaign-stopped"]]

    as_json = dialer(
        "campaign", "timeline", campaign_id, str(first), "--user-id", "alice", "--json"
    )
    assert as_json.exit_code == 0, as_json.output
    [decision] = json.loads(as_json.stdout)
    assert decision["kind"] == "canceled"
    assert decision["reason"] == "campaign-stopped"

    other = dialer("campaign", "timeline", campaign_id, str(first), "--user-id", "bob")
    assert other.exit_code == 1
    assert "not found" in other.stderr


def test_preview_prints_what_a_start_would_do(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(3))

    result = dialer("campaign", "preview", campaign_id, "--user-id", "alice", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "draft"
    assert body["recipients"] == 3
    # Callable now or waiting for New York's legal hours, whatever the time of the test.
    waiting = sum(d["count"] for d in body["deferred"])
    assert body["callable_now"] + waiting == 3
    assert body["estimate"]["completes_at"] is not None
    assert body["estimate"]["assumptions"]["source"] == "defaults"

    text = dialer("campaign", "preview", campaign_id, "--user-id", "alice")
    assert text.exit_code == 0, text.output
    assert "recipients      3" in text.stdout
    assert "completes at" in text.stdout

    missing = dialer("campaign", "preview", "no-such-id", "--user-id", "alice")
    assert missing.exit_code == 1
