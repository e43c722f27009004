"""A recipient's timeline (``GET /campaign/{id}/recipients/{rid}/timeline``), the timelines in
the export, and the launch preview (``GET /campaign/{id}/preview``)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.calls import states, timeline
from dialer.db.engine import session_factory
from dialer.db.models import CallAttempt, Campaign, Recipient, RecipientDecision
from tests.api.conftest import ManualClock, campaign_body

NEW_YORK = [f"+1212555{n:04d}" for n in range(100, 105)]


def _stopped(client: TestClient) -> tuple[str, list[int]]:
    """A campaign of five started and stopped at once: each recipient canceled."""
    body = campaign_body(recipients=[{"phone_number": n} for n in NEW_YORK])
    cid = str(client.post("/campaign", json=body).json()["id"])
    assert client.post(f"/campaign/{cid}/start").status_code == 200
    assert client.post(f"/campaign/{cid}/stop").status_code == 200
    ids = [r["id"] for r in client.get(f"/campaign/{cid}/recipients").json()["data"]]
    return cid, ids


def _writes(engine: Engine) -> tuple[int, int]:
    with session_factory(engine)() as session:
        return (
            int(session.scalar(sa.select(sa.func.count()).select_from(RecipientDecision)) or 0),
            int(session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) or 0),
        )


def test_a_timeline_says_what_was_decided_and_why(client: TestClient) -> None:
    cid, ids = _stopped(client)
    response = client.get(f"/campaign/{cid}/recipients/{ids[0]}/timeline")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    [decision] = body["data"]
    assert decision["kind"] == "canceled"
    assert decision["reason"] == "campaign-stopped"
    assert decision["until"] is None
    assert decision["attempt_id"] is None
    assert decision["at"].startswith("2026-11-23T15:00:00")


def test_a_timeline_pages_oldest_first(client: TestClient, clock: ManualClock) -> None:
    cid, ids = _stopped(client)
    for _ in range(2):  # each new run resets, each stop cancels again
        clock.advance(60)
        assert client.post(f"/campaign/{cid}/start").status_code == 200
        assert client.post(f"/campaign/{cid}/stop").status_code == 200
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get(f"/campaign/{cid}/recipients/{ids[1]}/timeline", params=params).json()
        seen.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(d["kind"], d["reason"]) for d in seen] == [
        ("canceled", "campaign-stopped"),
        ("reset", "new-run"),
        ("canceled", "campaign-stopped"),
        ("reset", "new-run"),
        ("canceled", "campaign-stopped"),
    ]
    assert [d["id"] for d in seen] == sorted(d["id"] for d in seen)  # type: ignore[type-var]


def test_another_tenants_recipient_has_no_timeline(client: TestClient, bob: dict[str, str]) -> None:
    cid, ids = _stopped(client)
    assert (
        client.get(f"/campaign/{cid}/recipients/{ids[0]}/timeline", headers=bob).status_code == 404
    )
    other = str(client.post("/campaign", json=campaign_body()).json()["id"])
    assert client.get(f"/campaign/{other}/recipients/{ids[0]}/timeline").status_code == 404
    bad = client.get(f"/campaign/{cid}/recipients/{ids[0]}/timeline", params={"cursor": "x!"})
    assert bad.status_code == 422


def test_the_export_carries_each_recipients_timeline(client: TestClient, engine: Engine) -> None:
    body = campaign_body(recipients=[{"phone_number": n} for n in NEW_YORK[:2]])
    cid = str(client.post("/campaign", json=body).json()["id"])
    client.post(f"/campaign/{cid}/start")
    with session_factory(engine)() as session, session.begin():
        first = session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == cid).order_by(Recipient.id)
        ).first()
        assert first is not None
        row = session.get_one(Campaign, first.campaign_id)
        [attempt_id] = states.new_attempts(
            session, row, [(first, "+14155550100")], first.created_at
        )
        timeline.note_dialed(session, first, attempt_id, first.created_at)
    lines = client.get(f"/campaign/{cid}/export", params={"format": "jsonl"}).text.splitlines()
    [exported] = [json.loads(line) for line in lines]
    assert [d["kind"] for d in exported["timeline"]] == ["dialed"]
    assert exported["timeline"][0]["attempt_id"] == exported["attempt_id"]
    assert exported["timeline"][0]["facts"]["zones"][0]["zone"] == "America/New_York"
    text = client.get(f"/campaign/{cid}/export").text
    header, values = text.splitlines()[0], text.splitlines()[1]
    assert header.split(",")[-1] == "timeline"
    assert '""kind"":""dialed""' in values


def test_the_preview_of_a_draft_screens_as_if_it_ran_now(
    client: TestClient, engine: Engine
) -> None:
    """At 10:00 in New York: New York numbers are callable, Tokyo ones (00:00 there) wait for
    08:00 there, a number with no known zone would be skipped, one put on the do-not-call list has
    ended suppressed; nothing is written."""
    recipients = [{"phone_number": n} for n in NEW_YORK]
    recipients += [
        {"phone_number": f"+1415555{n:04d}", "time_zone": "Asia/Tokyo"} for n in range(3)
    ]
    recipients += [{"phone_number": "+870301234567"}, {"phone_number": "+12125559999"}]
    cid = str(client.post("/campaign", json=campaign_body(recipients=recipients)).json()["id"])
    assert client.post("/suppression", json={"phone_number": "+12125559999"}).status_code == 201
    before = _writes(engine)
    response = client.get(f"/campaign/{cid}/preview")
    assert response.status_code == 200, response.text
    body = response.json()
    assert _writes(engine) == before
    assert body["status"] == "draft"
    assert body["evaluated_as"] == "running"
    assert body["recipients"] == 10
    assert body["callable_now"] == 5
    assert body["deferred"] == [
        {
            "reason": "outside-legal-hours",
            "count": 3,
            "earliest_until": "2026-11-23T23:00:00Z",
            "latest_until": "2026-11-23T23:00:00Z",
        }
    ]
    assert sorted((t["status"], t["reason"], t["count"]) for t in body["turned_away"]) == [
        ("skipped", "unknown-time-zone", 1),
    ]
    # Putting a number on the do-not-call list ends its recipients at once (opted out).
    assert body["ended"] == {"suppressed": 1}
    estimate = body["estimate"]
    assert estimate["assumptions"]["source"] == "defaults"
    assert estimate["assumptions"]["answer_rate"] == 0.35
    # The Tokyo recipients cannot be called before 23:00 UTC: the estimate ends after that.
    assert estimate["completes_at"] > "2026-11-23T23:00:00Z"
    assert estimate["expected_calls"] >= 8


def test_another_tenants_campaign_has_no_preview(client: TestClient, bob: dict[str, str]) -> None:
    cid = str(client.post("/campaign", json=campaign_body()).json()["id"])
    assert client.get(f"/campaign/{cid}/preview", headers=bob).status_code == 404
    empty = client.get(f"/campaign/{cid}/preview").json()
    assert empty["recipients"] == 0
    assert empty["callable_now"] == 0


def test_deleting_a_campaign_deletes_its_timelines(client: TestClient, engine: Engine) -> None:
    cid, _ = _stopped(client)
    assert _writes(engine)[0] == 5
    assert client.delete(f"/campaign/{cid}").status_code == 204
    assert _writes(engine)[0] == 0


def test_the_preview_skips_numbers_without_consent_when_the_campaign_requires_it(
    client: TestClient,
) -> None:
    """Two of five New York numbers have a consent record (one captured after now, which does
    not count yet): a campaign that requires consent would skip four of them."""
    given = {"basis": "express_written", "source": "web-form:signup"}
    for number, captured_at in ((NEW_YORK[0], "2026-11-01T09:00:00Z"),
                                (NEW_YORK[1], "2099-01-01T09:00:00Z")):  # fmt: skip
        posted = client.post(
            "/consent", json={"phone_number": number, "captured_at": captured_at, **given}
        )
        assert posted.status_code == 201, posted.text
    body = campaign_body(recipients=[{"phone_number": n} for n in NEW_YORK], require_consent=True)
    cid = str(client.post("/campaign", json=body).json()["id"])
    preview = client.get(f"/campaign/{cid}/preview").json()
    assert preview["callable_now"] == 1
    assert [(t["status"], t["reason"], t["count"]) for t in preview["turned_away"]] == [
        ("skipped", "no-consent", 4)
    ]
