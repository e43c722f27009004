"""``dialer campaign history``: the campaign's changes, by whom, for its tenant only."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from dialer.clock import utc_now
from dialer.db.engine import session_factory
from dialer.services import campaigns, history
from tests.cli.conftest import CALLER, Dialer, create_campaign, numbers, tenant


def test_history_lists_the_operators_actions_and_an_api_keys_changes(
    dialer: Dialer, engine: Engine
) -> None:
    alice = tenant(engine, "alice", CALLER)
    cid = create_campaign(engine, alice, numbers(2))
    with session_factory(engine)() as session, session.begin():
        campaigns.update(
            session,
            alice,
            cid,
            {"max_concurrency": 7},
            now=utc_now(),
            actor=history.Actor.api_key("key-1", "dk_abcdefg"),
        )
    assert dialer("campaign", "start", cid, "--user-id", "alice").exit_code == 0
    assert dialer("campaign", "stop", cid, "--user-id", "alice").exit_code == 0

    result = dialer("campaign", "history", cid, "--user-id", "alice", "--oldest")

    assert result.exit_code == 0, result.output
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert header == ["at", "by", "kind", "what"]
    assert [(by, kind) for _, by, kind, _ in rows] == [
        ("operator", "created"),
        ("api-key dk_abcdefg", "updated"),
        ("operator", "action"),
        ("operator", "action"),
    ]
    assert rows[1][3] == "max_concurrency: 3 -> 7"
    assert "action=stop" in rows[3][3]
    assert "hang_up=False" in rows[3][3]

    as_json = dialer("campaign", "history", cid, "--user-id", "alice", "--json", "--limit", "1")
    assert as_json.exit_code == 0, as_json.output
    [newest] = json.loads(as_json.stdout)
    assert (newest["actor"], newest["details"]["action"]) == ("operator", "stop")


def test_history_of_another_tenants_campaign_is_not_found(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    tenant(engine, "bob")
    cid = create_campaign(engine, alice, numbers(1))

    result = dialer("campaign", "history", cid, "--user-id", "bob")

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: campaign {cid} not found"
