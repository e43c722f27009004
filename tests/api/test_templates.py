"""Message templates are checked when a campaign is saved, not mid-call."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import campaign_body


def test_template_errors_are_caught_at_save(client: TestClient) -> None:
    bad = client.post("/campaign", json=campaign_body(opening_message_template="Hi {{name"))
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "opening_message_template"
    body = campaign_body(
        opening_message_template="Hi {{first_name}}",
        recipients=[{"phone_number": "+14155552671", "metadata": {"last_name": "L"}}],
    )
    missing = client.post("/campaign", json=body)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["field"] == "recipients.0.metadata"
    ok = client.post(
        "/campaign",
        json=campaign_body(
            recipients=[{"phone_number": "+14155552671", "metadata": {"last_name": "L"}}]
        ),
    ).json()
    later = client.patch(
        f"/campaign/{ok['id']}", json={"opening_message_template": "Hi {{first_name}}"}
    )
    assert later.status_code == 422
    assert "+14155552671" in later.json()["detail"][0]["reason"]
    batch = client.post(
        f"/campaign/{ok['id']}/recipients",
        json={"recipients": [{"phone_number": "+12125550123", "metadata": {}}]},
    )
    assert batch.json()["accepted"] == 1, "no template yet: any metadata is fine"
