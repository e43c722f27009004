"""What an operator sees through the API of a campaign that runs: why recipients wait, the
calls in flight, each recipient's calls, and a stop that hangs up (on the simulator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import TERMINAL_RECIPIENT, AttemptStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.settings import Settings
from tests.api.conftest import headers_for
from tests.flow.harness import Harness, numbers, profile

USER = "tenant"


@pytest.fixture
def wired(engine: Engine) -> Iterator[tuple[Harness, TestClient]]:
    h = Harness(engine, sim=profile(human=1.0))  # every call answered, 30 s of talk
    app = create_app(
        Settings(database_url=str(engine.url)),
        engine=engine,
        clock=h.clock,
        runtime_factory=lambda: h.runtime,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers_for(engine, USER))
        yield h, client


def _running(h: Harness, n: int = 5, concurrency: int = 2) -> str:
    cid = h.campaign(numbers(n), user=USER, max_concurrency=concurrency)
    h.act(cid, CampaignAction.START)
    for _ in range(8):  # set up, rung and answered: both calls in progress
        h.step()
    return cid


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _idle(client: TestClient) -> None:
    assert client.app.state.ctx.wait_idle(10)  # type: ignore[attr-defined]


def test_a_running_campaign_says_what_its_recipients_wait_for(
    wired: tuple[Harness, TestClient],
) -> None:
    h, client = wired
    cid = _running(h)
    waiting = _ok(client.get(f"/campaign/{cid}"))["waiting"]
    assert waiting["calling"] is True
    assert waiting["held_by"] is None
    assert waiting["slots"] == {
        "max_concurrency": 2, "in_use": 2, "free": 0, "source": "database",
    }  # fmt: skip
    assert waiting["due"] == 3
    assert waiting["window"]["count"] == 0
    assert waiting["retry"] == {"count": 0, "next_at": None}
    # Lists and actions answer without the breakdown.
    assert "waiting" not in _ok(client.get("/campaign"))["data"][0]


def test_live_calls_list_the_tenants_calls_in_flight_a_page_at_a_time(
    wired: tuple[Harness, TestClient], engine: Engine
) -> None:
    h, client = wired
    cid = _running(h)
    live = _ok(client.get("/call", params={"status": "live"}))
    assert live["next_cursor"] is None
    assert [c["status"] for c in live["data"]] == ["in_progress", "in_progress"]
    for call in live["data"]:
        assert call["campaign_id"] == cid
        assert call["provider_call_id"]
        assert call["attempt_number"] == 1
        assert call["dialed_at"] is not None
    first = _ok(client.get("/call", params={"limit": 1}))
    assert len(first["data"]) == 1
    second = _ok(client.get("/call", params={"limit": 1, "cursor": first["next_cursor"]}))
    assert {c["id"] for c in first["data"] + second["data"]} == {c["id"] for c in live["data"]}
    assert _ok(client.get("/call", params={"status": "ringing"}))["data"] == []
    assert _ok(client.get("/call", params={"campaign_id": "other"}))["data"] == []
    # Another tenant sees none of them.
    other = client.get("/call", headers=headers_for(engine, "someone-else"))
    assert _ok(other)["data"] == []
    assert client.get("/call", params={"status": "ended"}).status_code == 422


def test_a_campaigns_calls_filter_by_recipient_status_and_outcome(
    wired: tuple[Harness, TestClient],
) -> None:
    h, client = wired
    cid = _running(h, n=3, concurrency=2)
    recipients = _ok(client.get(f"/campaign/{cid}/recipients"))["data"]
    on_call = [r for r in recipients if r["calls"]]
    assert len(on_call) == 2
    target = on_call[0]
    (call,) = target["calls"]
    assert call["attempt_number"] == 1
    assert call["provider_call_id"]
    by_recipient = _ok(client.get(f"/campaign/{cid}/calls", params={"recipient_id": target["id"]}))[
        "data"
    ]
    assert [c["id"] for c in by_recipient] == [call["id"]]
    assert by_recipient[0]["provider_call_id"] == call["provider_call_id"]
    in_progress = client.get(f"/campaign/{cid}/calls", params={"status": "in_progress"})
    assert len(_ok(in_progress)["data"]) == 2
    h.run_until_done(cid)
    human = _ok(client.get(f"/campaign/{cid}/calls", params={"outcome": "human"}))["data"]
    assert len(human) == 3
    assert _ok(client.get(f"/campaign/{cid}/calls", params={"outcome": "busy"}))["data"] == []
    assert client.get(f"/campaign/{cid}/calls", params={"outcome": "nope"}).status_code == 422


def test_stop_with_hang_up_ends_the_calls_in_flight_and_frees_their_slots(
    wired: tuple[Harness, TestClient],
) -> None:
    h, client = wired
    cid = _running(h)
    stopped = client.post(f"/campaign/{cid}/stop", json={"hang_up": True})
    assert stopped.status_code == 200, stopped.text
    _idle(client)
    h.deliver_due()  # the hang-ups' own callbacks: repeats of what the answers said
    assert h.simulator.live_calls().ids == frozenset()
    assert _ok(client.get("/call"))["data"] == []
    assert h.stores.slots.in_use(cid) == 0
    with h.session() as session:
        recipients = list(session.scalars(sa.select(Recipient)))
        attempts = list(session.scalars(sa.select(CallAttempt)))
    assert {a.status for a in attempts} == {AttemptStatus.ENDED}
    for r in recipients:
        assert r.status in TERMINAL_RECIPIENT
        assert r.reason is not None or r.last_outcome is not None
    assert h.truth(cid) == h.counts(cid)


def test_stop_without_hang_up_lets_the_calls_finish(wired: tuple[Harness, TestClient]) -> None:
    h, client = wired
    cid = _running(h)
    assert client.post(f"/campaign/{cid}/stop").status_code == 200
    assert client.post(f"/campaign/{cid}/stop", json={}).status_code == 409  # already stopped
    _idle(client)
    assert len(_ok(client.get("/call"))["data"]) == 2
    for _ in range(60):
        h.step()
    assert _ok(client.get("/call"))["data"] == []
    with h.session() as session:
        statuses = set(session.scalars(sa.select(Recipient.status)))
    assert statuses <= TERMINAL_RECIPIENT


@pytest.mark.parametrize("body", [{"hang_up": "yes"}, {"hangup": True}, [True]])
def test_a_bad_stop_body_is_a_422_and_stops_nothing(
    wired: tuple[Harness, TestClient], body: Any
) -> None:
    h, client = wired
    cid = _running(h)
    response = client.post(f"/campaign/{cid}/stop", json=body)
    assert response.status_code == 422, response.text
    assert _ok(client.get(f"/campaign/{cid}"))["status"] == "running"


def test_a_campaign_id_filter_with_a_nul_is_a_422(wired: tuple[Harness, TestClient]) -> None:
    _, client = wired
    response = client.get("/call", params={"campaign_id": "a\x00b"})
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["detail"]] == ["url"]  # the guard's, first
