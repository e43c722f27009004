"""Action endpoints and what may change while a campaign runs."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.settings import Settings
from tests.api.conftest import CALLER, ManualClock, campaign_body, headers_for
from tests.carrier.support import wait_until


def _campaign(client: TestClient, n: int = 2) -> str:
    numbers = ["+14155552671", "+12125550123", "+16175550199"][:n]
    body = campaign_body(recipients=[{"phone_number": p} for p in numbers])
    response = client.post("/campaign", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_lifecycle_start_pause_resume_stop(client: TestClient) -> None:
    cid = _campaign(client)
    started = client.post(f"/campaign/{cid}/start").json()
    assert started["status"] == "running"
    run_id = started["current_run_id"]
    assert run_id
    assert client.post(f"/campaign/{cid}/pause").json()["status"] == "paused"
    resumed = client.post(f"/campaign/{cid}/start").json()
    assert resumed["status"] == "running"
    assert resumed["current_run_id"] == run_id, "resuming continues the same run"
    stopped = client.post(f"/campaign/{cid}/stop").json()
    assert stopped["status"] == "completed"
    assert stopped["ended_reason"] == "campaign.scheduled.ended-by-user"
    assert stopped["counts"]["canceled"] == 2
    assert stopped["counts"]["pending"] == 0


def test_start_of_completed_campaign_opens_new_run(client: TestClient) -> None:
    cid = _campaign(client)
    first = client.post(f"/campaign/{cid}/start").json()["current_run_id"]
    client.post(f"/campaign/{cid}/stop")
    again = client.post(f"/campaign/{cid}/start").json()
    assert again["status"] == "running"
    assert again["current_run_id"] != first
    assert again["ended_reason"] is None
    assert again["counts"]["pending"] == 2


def test_illegal_action_is_409_naming_state_and_action(client: TestClient) -> None:
    cid = _campaign(client)
    response = client.post(f"/campaign/{cid}/pause")
    assert response.status_code == 409
    assert response.json()["state"] == "draft"
    assert response.json()["action"] == "pause"
    response = client.post(f"/campaign/{cid}/save_draft")
    assert response.status_code == 409


def test_start_without_callable_recipients_is_409(client: TestClient) -> None:
    cid = client.post("/campaign", json=campaign_body()).json()["id"]
    response = client.post(f"/campaign/{cid}/start")
    assert response.status_code == 409
    assert "callable" in response.json()["message"]
    assert client.get(f"/campaign/{cid}").json()["status"] == "draft"


def test_save_draft_from_paused(client: TestClient) -> None:
    cid = _campaign(client)
    client.post(f"/campaign/{cid}/start")
    client.post(f"/campaign/{cid}/pause")
    assert client.post(f"/campaign/{cid}/save_draft").json()["status"] == "draft"


def test_patch_while_running_changes_safe_fields(client: TestClient) -> None:
    cid = _campaign(client)
    client.post(f"/campaign/{cid}/start")
    response = client.patch(
        f"/campaign/{cid}", json={"max_concurrency": 1, "name": "Later", "retry_policy": {}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["max_concurrency"] == 1
    frozen = client.patch(f"/campaign/{cid}", json={"assistant_id": "other"})
    assert frozen.status_code == 409
    assert "assistant_id" in frozen.json()["message"]


def test_patch_rejects_read_only_fields(client: TestClient) -> None:
    cid = _campaign(client)
    for field, value in [("status", "running"), ("counts", {}), ("id", "x"), ("channel", "sms")]:
        response = client.patch(f"/campaign/{cid}", json={field: value})
        assert response.status_code == 422, field
        assert response.json()["detail"][0]["field"] == field
    assert client.get(f"/campaign/{cid}").json()["status"] == "draft"


def test_recipients_appended_while_running(client: TestClient) -> None:
    cid = _campaign(client, 1)
    client.post(f"/campaign/{cid}/start")
    response = client.post(
        f"/campaign/{cid}/recipients", json={"recipients": [{"phone_number": "+16175550199"}]}
    )
    assert response.json() == {"accepted": 1, "rejected": []}
    assert client.get(f"/campaign/{cid}").json()["counts"]["pending"] == 2


class _Dispatches:
    """A runtime stand-in whose queue records dispatch requests (or fails them)."""

    def __init__(self, fail: bool = False) -> None:
        self.campaigns: list[str] = []
        self.fail = fail
        self.queue = self

    def dispatch(self, campaign_id: str) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.campaigns.append(campaign_id)

    def close(self) -> None:
        pass


def _client_with(engine: Engine, clock: ManualClock, runtime: object, redis_url: str | None):
    settings = Settings(database_url=str(engine.url), redis_url=redis_url)
    app = create_app(settings, engine=engine, clock=clock, runtime_factory=lambda: runtime)
    client = TestClient(app, raise_server_exceptions=False)
    client.headers.update(headers_for(engine, "alice", CALLER))
    return client


def test_start_and_resume_ask_the_workers_for_a_dispatch_at_once(
    engine: Engine, clock: ManualClock
) -> None:
    runtime = _Dispatches()
    with _client_with(engine, clock, runtime, "redis://127.0.0.1:6379/15") as client:
        cid = _campaign(client)
        assert client.post(f"/campaign/{cid}/start").status_code == 200
        # Asked right after the answer (on the API's backlog), not at the scheduler's tick.
        wait_until(lambda: runtime.campaigns == [cid])
        client.post(f"/campaign/{cid}/pause")
        client.post(f"/campaign/{cid}/start")
        wait_until(lambda: runtime.campaigns == [cid, cid])
        client.post(f"/campaign/{cid}/stop")
    assert runtime.campaigns == [cid, cid]  # the backlog is done once the app has stopped


def test_a_start_succeeds_when_the_dispatch_request_cannot_be_sent(
    engine: Engine, clock: ManualClock
) -> None:
    with _client_with(engine, clock, _Dispatches(fail=True), "redis://127.0.0.1:6379/15") as c:
        cid = _campaign(c)
        response = c.post(f"/campaign/{cid}/start")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "running"  # the scheduler's tick dispatches it


def test_an_embedded_api_leaves_the_first_dispatch_to_the_scheduler(
    engine: Engine, clock: ManualClock
) -> None:
    runtime = _Dispatches()
    with _client_with(engine, clock, runtime, None) as client:
        cid = _campaign(client)
        assert client.post(f"/campaign/{cid}/start").json()["status"] == "running"
    assert runtime.campaigns == [], "only the scheduler process dispatches in embedded mode"
