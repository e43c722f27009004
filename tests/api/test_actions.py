"""Action endpoints and what may change while a campaign runs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import campaign_body


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
