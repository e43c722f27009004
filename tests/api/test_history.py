"""``GET /campaign/{id}/history``: every change, the key that made it, newest first."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import ApiKey
from tests.api.conftest import campaign_body


def _campaign(client: TestClient) -> str:
    body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
    response = client.post("/campaign", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _history(client: TestClient, cid: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/campaign/{cid}/history", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _key(engine: Engine, client: TestClient) -> ApiKey:
    """The key ``client`` authenticates with."""
    presented = client.headers["Authorization"].removeprefix("Bearer ")
    with session_factory(engine)() as session:
        (key,) = [k for k in session.query(ApiKey) if presented.startswith(k.prefix)]
        return key


def test_patch_records_only_the_fields_that_changed_with_old_and_new(
    client: TestClient, engine: Engine
) -> None:
    cid = _campaign(client)
    long_context = "x" * 5000
    patched = client.patch(
        f"/campaign/{cid}",
        json={"name": "Renewals", "max_concurrency": 9, "campaign_context": long_context},
    )
    assert patched.status_code == 200, patched.text

    newest = _history(client, cid)[0]
    assert newest["kind"] == "updated"
    changes = newest["details"]["changes"]
    assert set(changes) == {"max_concurrency", "campaign_context"}, "name did not change"
    assert changes["max_concurrency"] == {"old": 5, "new": 9}
    assert changes["campaign_context"]["old"] is None
    assert changes["campaign_context"]["new"]["length"] == 5000
    assert len(changes["campaign_context"]["new"]["sha256"]) == 64
    key = _key(engine, client)
    assert (newest["actor"], newest["api_key_id"], newest["api_key_prefix"]) == (
        "api-key",
        key.id,
        key.prefix,
    )


def test_a_patch_that_changes_nothing_records_nothing(client: TestClient) -> None:
    cid = _campaign(client)
    before = _history(client, cid)
    client.patch(f"/campaign/{cid}", json={"max_concurrency": 5})
    assert _history(client, cid) == before


def test_actions_and_recipients_added_are_recorded_in_order(client: TestClient) -> None:
    cid = _campaign(client)
    client.post(
        f"/campaign/{cid}/recipients",
        json={"recipients": [{"phone_number": "+12125550123"}, {"phone_number": "bad"}]},
    )
    client.post(f"/campaign/{cid}/start")
    client.post(f"/campaign/{cid}/pause")
    client.post(f"/campaign/{cid}/stop", json={"hang_up": False})

    entries = _history(client, cid, order="oldest")

    assert [e["kind"] for e in entries] == [
        "created",
        "recipients_added",
        "action",
        "action",
        "action",
    ]
    assert entries[0]["details"]["recipients"] == 1
    assert entries[0]["details"]["fields"]["max_concurrency"] == 5
    assert entries[1]["details"] == {"count": 1, "rejected": 1}
    start, pause, stop = (e["details"] for e in entries[2:])
    assert (start["action"], start["from"], start["to"]) == ("start", "draft", "running")
    assert start["run_id"]
    assert (pause["action"], pause["to"]) == ("pause", "paused")
    assert (stop["action"], stop["to"], stop["hang_up"]) == ("stop", "completed", False)
    assert stop["ended_reason"] == "campaign.scheduled.ended-by-user"
    assert [e["id"] for e in _history(client, cid)] == [e["id"] for e in reversed(entries)]


def test_pages_follow_the_cursor(client: TestClient) -> None:
    cid = _campaign(client)
    for n in range(3):
        client.patch(f"/campaign/{cid}", json={"max_concurrency": 6 + n})
    first = client.get(f"/campaign/{cid}/history", params={"limit": 2}).json()
    second = client.get(
        f"/campaign/{cid}/history", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    ids = [e["id"] for e in first["data"] + second["data"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 4
    assert second["next_cursor"] is None


def test_another_tenant_gets_404(client: TestClient, bob: dict[str, str]) -> None:
    cid = _campaign(client)
    assert client.get(f"/campaign/{cid}/history", headers=bob).status_code == 404
    assert client.get("/campaign/nope/history").status_code == 404


def test_a_deleted_campaign_keeps_its_history(client: TestClient, bob: dict[str, str]) -> None:
    cid = _campaign(client)
    assert client.delete(f"/campaign/{cid}").status_code == 204
    entries = _history(client, cid)
    assert [e["kind"] for e in entries] == ["deleted", "created"]
    assert client.get(f"/campaign/{cid}/history", headers=bob).status_code == 404
