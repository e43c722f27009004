"""``dialer campaign list|show|start|pause|stop``: what they print, for whom, and how they exit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy.engine import Engine

from dialer.concurrency.keys import SlotLimits, SlotScope, dispatch_pending_key
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots, SlotClaim
from dialer.concurrency.truth import SlotTruth
from dialer.db.engine import session_factory
from dialer.db.models import Campaign
from dialer.queue.celery import EVENTS_QUEUE
from tests.cli.conftest import CALLER, Dialer, create_campaign, numbers, tenant
from tests.e2e.fleet import free_port


def test_list_shows_the_tenants_campaigns_only(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    bob = tenant(engine, "bob", CALLER.replace("0100", "0101"))
    first = create_campaign(engine, alice, numbers(3), name="First")
    second = create_campaign(engine, alice, numbers(2), name="Second")
    create_campaign(engine, bob, numbers(1), name="Bob's", phone_number_id="+14155550101")
    dialer("campaign", "start", second, "--user-id", "alice")

    result = dialer("campaign", "list", "--user-id", "alice")

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["id", "name", "status", "recipients", "by state", "created"]
    listed = {row.split("\t")[0]: row.split("\t") for row in rows}
    assert set(listed) == {first, second}  # newest first, and never bob's
    assert rows[0].startswith(second)
    assert listed[first][1:5] == ["First", "draft", "3", "pending=3"]
    assert listed[second][2] == "running"
    datetime.fromisoformat(listed[first][5])  # plain output: ISO times, for scripts

    running = dialer("campaign", "list", "--user-id", "alice", "--status", "running", "--json")
    assert running.exit_code == 0, running.output
    body = json.loads(running.stdout)
    assert [c["id"] for c in body] == [second]
    assert body[0]["counts"]["pending"] == 2  # the API's shape, counts and all


def test_list_on_a_terminal_is_a_table_with_relative_times(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    create_campaign(engine, alice, numbers(2), name="Renewals [west]")
    result = dialer("campaign", "list", "--user-id", "alice", env={"TTY_COMPATIBLE": "1"})
    assert result.exit_code == 0, result.output
    assert "Renewals [west]" in result.stdout  # a name is text, never markup
    assert "pending 2" in result.stdout
    assert "ago" in result.stdout or "now" in result.stdout
    assert "┃" in result.stdout


def test_list_refuses_an_unknown_status(dialer: Dialer, engine: Engine) -> None:
    tenant(engine, "alice")
    result = dialer("campaign", "list", "--user-id", "alice", "--status", "stopped")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --status: must be one of draft, running, paused, completed, not 'stopped'"
    )


def test_show_prints_counts_calls_schedule_and_runs(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    later = datetime.now(UTC) + timedelta(hours=2)
    campaign_id = create_campaign(
        engine, alice, numbers(4), name="Winter", schedule_start_time=later
    )
    dialer("campaign", "start", campaign_id, "--user-id", "alice")

    result = dialer("campaign", "show", campaign_id, "--user-id", "alice")

    assert result.exit_code == 0, result.output
    lines = dict(_pairs(result.stdout))
    assert lines["name"] == "Winter"
    assert lines["status"] == "running"
    assert lines["total"] == "4"
    assert lines["pending"] == "4"
    assert lines["in flight (database)"] == "0"
    # Embedded, the semaphore is in the scheduler's memory: the database's calls are counted.
    assert lines["slots in use"] == "0 / 3 (counted from the database)"
    assert lines["free slots"] == "3"
    # The campaign's own window is closed: every recipient waits for it to open.
    assert lines["calling"].startswith("no: outside-campaign-window, opens ")
    assert lines["due, for a slot"] == "0"
    assert lines["for a window"].startswith("4 (campaign window 4, legal hours 0), next opens ")
    assert lines["due now"] == "4"
    assert lines["window"].startswith("closed, opens ")
    opens = datetime.fromisoformat(lines["window"].removeprefix("closed, opens "))
    assert abs((opens - later).total_seconds()) < 1
    assert lines["run 1"].startswith("started ")

    as_json = dialer("campaign", "show", campaign_id, "--user-id", "alice", "--json")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert body["campaign"]["id"] == campaign_id
    assert body["campaign"]["counts"]["pending"] == 4
    assert body["window"]["open"] is False
    assert body["slots"] == {"max_concurrency": 3, "in_use": 0, "free": 3, "source": "database"}
    assert body["waiting"]["calling"] is False
    assert body["waiting"]["opens_at"] is not None
    assert body["run_count"] == 1
    assert body["calls_in_flight"] == 0


def test_show_on_a_terminal_says_times_for_people(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    later = datetime.now(UTC) + timedelta(minutes=30, seconds=20)
    campaign_id = create_campaign(engine, alice, numbers(1), schedule_start_time=later)
    result = dialer(
        "campaign", "show", campaign_id, "--user-id", "alice", env={"TTY_COMPATIBLE": "1"}
    )
    assert result.exit_code == 0, result.output
    assert "(in 30 min)" in result.stdout


def _pairs(text: str) -> list[tuple[str, str]]:
    """``show``'s plain ``name  value`` lines (section titles left out)."""
    pairs = []
    for line in text.splitlines():
        if line.startswith("# ") or not line.strip():
            continue
        name, _, value = line.partition("  ")
        pairs.append((name.strip(), value.strip()))
    return pairs


def test_show_reads_the_slots_held_in_redis(dialer: Dialer, engine: Engine, redis_url: str) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))
    client = redis.Redis.from_url(redis_url)
    slots = CallSlots(RedisSemaphore(client))
    scope = SlotScope(campaign_id, alice, CALLER)
    claims = [SlotClaim(n, scope, SlotLimits(campaign=3)) for n in (901, 902)]
    try:
        # A store never used (or flushed) admits nothing before it is built from the database
        # (which has no call in flight here).
        slots.rebuild(lambda _observed: SlotTruth(), lease_s=60)
        assert all(slots.acquire_many(claims, lease_s=60))
        result = dialer(
            "campaign", "show", campaign_id, "--user-id", "alice", "--json",
            env={"DIALER_REDIS_URL": redis_url},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["slots"] == {
            "max_concurrency": 3,
            "in_use": 2,
            "free": 1,
            "source": "semaphore",
        }
    finally:
        for claim in claims:
            slots.release(claim.attempt_id, scope)
        client.close()


def test_start_pause_stop_print_the_new_status(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))

    started = dialer("campaign", "start", campaign_id, "--user-id", "alice")
    assert started.exit_code == 0, started.output
    assert started.stdout.strip() == f"campaign {campaign_id}: running"

    paused = dialer("campaign", "pause", campaign_id, "--user-id", "alice")
    assert paused.exit_code == 0, paused.output
    assert paused.stdout.strip() == f"campaign {campaign_id}: paused"

    again = dialer("campaign", "pause", campaign_id, "--user-id", "alice")
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: cannot pause a campaign that is paused"

    stopped = dialer("campaign", "stop", campaign_id, "--user-id", "alice")
    assert stopped.exit_code == 0, stopped.output
    assert stopped.stdout.strip() == (
        f"campaign {campaign_id}: completed (campaign.scheduled.ended-by-user)"
    )
    with session_factory(engine)() as session:
        row = session.get_one(Campaign, campaign_id)
        assert row.status.value == "completed"
    listed = dialer("campaign", "list", "--user-id", "alice")
    assert "canceled=2" in listed.stdout  # stopping canceled the recipients never called


def test_a_start_the_campaign_cannot_take_is_refused(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)  # nobody to call
    result = dialer("campaign", "start", campaign_id, "--user-id", "alice")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the campaign has no callable recipients")


@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["start"],
        ["pause"],
        ["stop"],
        ["watch"],
        ["export"],
    ],
)
def test_another_tenants_campaign_is_not_found(
    dialer: Dialer, engine: Engine, command: list[str]
) -> None:
    alice = tenant(engine, "alice", CALLER)
    tenant(engine, "bob")
    campaign_id = create_campaign(engine, alice, numbers(1))
    result = dialer("campaign", *command, campaign_id, "--user-id", "bob")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"error: campaign {campaign_id} not found"
    unknown = dialer("campaign", *command, "no-such-campaign", "--user-id", "alice")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: campaign no-such-campaign not found"
    with session_factory(engine)() as session:
        assert session.get_one(Campaign, campaign_id).status.value == "draft"


def test_an_unknown_user_id_is_refused(dialer: Dialer, engine: Engine) -> None:
    result = dialer("campaign", "list", "--user-id", "nobody")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no tenant has user id 'nobody'"


def test_bad_settings_and_an_unbuilt_database_are_configuration_errors(
    dialer: Dialer, tmp_path: object
) -> None:
    bad = dialer("campaign", "list", "--user-id", "a", env={"DIALER_DATABASE_URL": "mysql://x/y"})
    assert bad.exit_code == 2
    assert "DIALER_DATABASE_URL" in bad.stderr
    empty = dialer(
        "campaign", "list", "--user-id", "a",
        env={"DIALER_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"},
    )  # fmt: skip
    assert empty.exit_code == 2
    assert empty.stderr.startswith("error: database: no such table: tenants")
    assert "dialer db upgrade" in empty.stderr


def test_a_missing_argument_is_a_usage_error(dialer: Dialer) -> None:
    result = dialer("campaign", "show", "--user-id", "alice")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_a_start_asks_the_workers_for_a_dispatch(
    dialer: Dialer, engine: Engine, redis_url: str
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))
    client = redis.Redis.from_url(redis_url)
    try:
        result = dialer(
            "campaign", "start", campaign_id, "--user-id", "alice",
            env={"DIALER_REDIS_URL": redis_url},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"campaign {campaign_id}: running"
        assert client.exists(dispatch_pending_key(campaign_id))  # and the task is queued
        queued = [m for m in client.lrange(EVENTS_QUEUE, 0, -1) if campaign_id.encode() in m]
        assert len(queued) == 1
    finally:
        for message in client.lrange(EVENTS_QUEUE, 0, -1):
            if campaign_id.encode() in message:
                client.lrem(EVENTS_QUEUE, 0, message)
        client.delete(dispatch_pending_key(campaign_id))
        client.close()


def test_a_start_with_the_broker_away_still_starts(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))
    away = f"redis://127.0.0.1:{free_port()}/0"
    result = dialer(
        "campaign", "start", campaign_id, "--user-id", "alice",
        env={"DIALER_REDIS_URL": away, "DIALER_REDIS_CONNECT_TIMEOUT_S": "0.5"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"campaign {campaign_id}: running"
    assert "warning: could not ask the workers for a dispatch" in result.stderr
    assert "the scheduler's next tick dispatches the campaign" in result.stderr


def test_show_gives_the_next_opening_of_weekly_hours_in_utc(dialer: Dialer, engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    now = datetime.now(UTC)
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    # Tokyo hours that opened an hour and a half ago and closed an hour ago, every day.
    start = (tokyo - timedelta(minutes=90)).strftime("%H:%M")
    end = (tokyo - timedelta(minutes=60)).strftime("%H:%M")
    weekly = {
        "timezone": "Asia/Tokyo",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": start,
                   "end": end}],
    }  # fmt: skip
    campaign_id = create_campaign(engine, alice, numbers(1), weekly_schedule=weekly)
    result = dialer("campaign", "show", campaign_id, "--user-id", "alice")
    assert result.exit_code == 0, result.output
    window = dict(_pairs(result.stdout))["window"]
    opens = datetime.fromisoformat(window.removeprefix("closed, opens "))
    assert opens.utcoffset() == timedelta(0)
    expected = (now - timedelta(minutes=90)).replace(second=0, microsecond=0) + timedelta(days=1)
    assert abs(opens - expected) < timedelta(minutes=2), (opens, expected)
