"""Campaign CRUD and the reference bodies, over HTTP on both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import CALLER, campaign_body

#: The Kathan PATCH example (reference 001) with its placeholders replaced by real values.
REFERENCE_PATCH: dict[str, Any] = {
    "name": "Spring renewals",
    "scheduleStartTime": "2026-12-01T14:00:00Z",
    "scheduleEndTime": "2026-12-05T23:00:00Z",
    "max_concurrency": 100,
    "retry_policy": {},
    "speech_settings": {
        "style": "neutral",
        "responsiveness": "balanced",
        "interruptions": "on",
        "emotions": "natural",
    },
    "campaign_context": "Customers whose plan renews this month.",
    "opening_message_template": "Hi {{first_name}}, this is Acme about your renewal.",
    "use_returning_greeting": True,
    "use_short_term_summaries": True,
    "short_term_summaries_limit": 123,
    "machine_detection_timeout_seconds": 31,
    "recipients": [
        {
            "phone_number": "+14155552671",
            "metadata": {"first_name": "Ada"},
            "assistant_overrides": {},
        }
    ],
}

#: Every writable field of the reference response (000), with real values.
REFERENCE_CREATE: dict[str, Any] = {
    "name": "Renewals",
    "assistant_id": "asst_8f2c",
    "channel": "voice",
    "phone_number_id": CALLER,
    "max_concurrency": 123 % 200,
    "retry_policy": {"max_attempts": 4, "backoff": {"kind": "list", "delays": ["5m", "1h"]}},
    "speech_settings": {
        "style": "neutral",
        "responsiveness": "balanced",
        "interruptions": "on",
        "emotions": "natural",
    },
    "assistant_name": "Renewal assistant",
    "caller_id_number": "+14155550100",
    "schedule_start_time": "2026-12-01T14:00:00Z",
    "schedule_end_time": "2026-12-02T02:00:00Z",
    "campaign_context": "Context",
    "opening_message_template": "Hello {{first_name}}",
    "use_returning_greeting": False,
    "use_short_term_summaries": False,
    "short_term_summaries_limit": 123,
    "machine_detection_timeout_seconds": 60,
}


def _written(body: dict[str, Any]) -> dict[str, Any]:
    aliases = {"scheduleStartTime": "schedule_start_time", "scheduleEndTime": "schedule_end_time"}
    return {aliases.get(k, k): v for k, v in body.items() if k != "recipients"}


def test_reference_create_body_round_trips(client: TestClient) -> None:
    created = client.post("/campaign", json=REFERENCE_CREATE)
    assert created.status_code == 201, created.text
    got = client.get(f"/campaign/{created.json()['id']}").json()
    for field, value in _written(REFERENCE_CREATE).items():
        assert got[field] == value, field
    assert got["status"] == "draft"
    assert got["counts"]["total"] == 0


def test_reference_patch_body_round_trips(client: TestClient) -> None:
    campaign = client.post("/campaign", json=campaign_body()).json()
    patched = client.patch(f"/campaign/{campaign['id']}", json=REFERENCE_PATCH)
    assert patched.status_code == 200, patched.text
    assert patched.json()["recipient_batch"] == {"accepted": 1, "rejected": []}
    got = client.get(f"/campaign/{campaign['id']}").json()
    for field, value in _written(REFERENCE_PATCH).items():
        assert got[field] == value, field
    assert got["counts"]["total"] == 1
    assert got["counts"]["pending"] == 1
    recipients = client.get(f"/campaign/{campaign['id']}/recipients").json()["data"]
    assert recipients[0]["metadata"] == {"first_name": "Ada"}


def test_response_has_every_reference_field(client: TestClient) -> None:
    reference_fields = {
        "id", "name", "assistant_id", "channel", "phone_number_id", "status", "max_concurrency",
        "retry_policy", "speech_settings", "assistant_name", "caller_id_number",
        "schedule_start_time", "schedule_end_time", "campaign_context",
        "opening_message_template", "use_returning_greeting", "use_short_term_summaries",
        "short_term_summaries_limit", "machine_detection_timeout_seconds", "recipient_list_id",
        "recipient_list_name", "recipient_list_row_count", "counts", "created_at", "updated_at",
    }  # fmt: skip
    body = client.post("/campaign", json=campaign_body()).json()
    assert reference_fields <= set(body)


def test_counts_are_documented_and_sum_to_total(client: TestClient) -> None:
    body = campaign_body(
        recipients=[{"phone_number": "+14155552671"}, {"phone_number": "+12125550123"}]
    )
    counts = client.post("/campaign", json=body).json()["counts"]
    states = ["pending", "queued", "in_flight", "waiting_retry", "done", "exhausted",
              "suppressed", "skipped", "canceled"]  # fmt: skip
    assert sum(counts[s] for s in states) == counts["total"] == 2
    assert counts["scheduled"] == 2
    assert counts["in_progress"] == counts["ended"] == counts["ended_voicemail"] == 0
    assert set(counts["outcomes"]) == {
        "human", "voicemail", "busy", "no_answer", "failed", "canceled", "unknown"
    }  # fmt: skip


def test_dial_plan_assigns_recipients_to_caller_numbers(client: TestClient) -> None:
    second = client.post("/phone_number", json={"number": "+12125550100"}).json()["id"]
    body = campaign_body(
        phone_number_id=None,
        caller_id_number=None,
        dial_plan=[
            {"phone_number_id": "+14155550100", "recipients": [{"phone_number": "+14155552671"}]},
            {
                "phone_number_id": second,
                "caller_id_number": "+12125550100",
                "max_concurrency": 2,
                "recipients": [{"phone_number": "+12125550123"}],
            },
        ],
    )
    del body["phone_number_id"], body["caller_id_number"]
    created = client.post("/campaign", json=body)
    assert created.status_code == 201, created.text
    plan = created.json()["dial_plan"]
    assert [p["phone_number_id"] for p in plan] == ["+12125550100", "+14155550100"]
    assert created.json()["counts"]["total"] == 2


def test_list_is_newest_first_with_cursor_pages(client: TestClient, clock: Any) -> None:
    ids = []
    for n in range(5):
        ids.append(client.post("/campaign", json=campaign_body(name=f"c{n}")).json()["id"])
        clock.advance(1)
    seen = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/campaign", params=params).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    running = client.get("/campaign", params={"status": "running"}).json()
    assert running["data"] == []


def test_delete_only_when_not_running(client: TestClient) -> None:
    body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
    cid = client.post("/campaign", json=body).json()["id"]
    assert client.post(f"/campaign/{cid}/start").status_code == 200
    assert client.delete(f"/campaign/{cid}").status_code == 409
    assert client.post(f"/campaign/{cid}/pause").status_code == 200
    assert client.delete(f"/campaign/{cid}").status_code == 204
    assert client.get(f"/campaign/{cid}").status_code == 404


def test_a_null_for_a_field_that_may_not_be_null_is_a_422_on_create_and_patch(
    client: TestClient,
) -> None:
    """Leaving a field out takes its default; sending null for one that cannot be null is
    refused, naming it, and creates nothing (it was a 500 on create)."""
    before = client.get("/campaign").json()
    for name in ("retry_policy", "use_returning_greeting"):
        response = client.post("/campaign", json=campaign_body(**{name: None}))
        assert response.status_code == 422, (name, response.text)
        assert response.json()["detail"] == [{"field": name, "reason": "may not be null"}]
    assert client.get("/campaign").json() == before
    cid = client.post("/campaign", json=campaign_body()).json()["id"]
    patched = client.patch(f"/campaign/{cid}", json={"retry_policy": None})
    assert patched.status_code == 422
    assert patched.json()["detail"][0]["field"] == "retry_policy"


def test_the_same_number_twice_in_a_dial_plan_is_a_422(client: TestClient) -> None:
    body = campaign_body(
        dial_plan=[
            {"phone_number_id": "pn_1", "recipients": [{"phone_number": "+14155552671"}]},
            {"phone_number_id": "pn_1", "recipients": [{"phone_number": "+12125550123"}]},
        ],
    )
    del body["phone_number_id"], body["caller_id_number"]
    response = client.post("/campaign", json=body)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["field"] == "dial_plan"
    assert "appears twice" in problem["reason"]


def test_the_abandon_limit_is_written_and_read_and_the_health_fields_are_read_only(
    client: TestClient,
) -> None:
    created = client.post("/campaign", json=campaign_body())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["max_abandon_rate"] == 0.03
    assert body["paused_reason"] is None
    counts = body["counts"]
    assert (counts["human_answered_30d"], counts["abandoned_30d"]) == (0, 0)
    assert counts["abandon_rate_30d"] is None
    cid = body["id"]
    patched = client.patch(f"/campaign/{cid}", json={"max_abandon_rate": 0.01})
    assert patched.status_code == 200, patched.text
    assert client.get(f"/campaign/{cid}").json()["max_abandon_rate"] == 0.01
    for bad in (-0.1, 1.5, None):
        refused = client.patch(f"/campaign/{cid}", json={"max_abandon_rate": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert [d["field"] for d in refused.json()["detail"]] == ["max_abandon_rate"]
    echoed = client.patch(
        f"/campaign/{cid}", json={"paused_reason": "campaign.paused.abandon-rate"}
    )
    assert echoed.status_code == 422
    assert [d["field"] for d in echoed.json()["detail"]] == ["paused_reason"]
