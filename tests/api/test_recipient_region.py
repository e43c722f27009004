"""A recipient's region on the API: inline, in a batch, in a JSON or CSV list; checked (422 with
the field), stored upper-cased, and carried from a list into a campaign."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import campaign_body
from tests.api.lists import import_csv, import_json, rejected_rows


def _regions(client: TestClient, campaign_id: str) -> dict[str, str | None]:
    listed = client.get(f"/campaign/{campaign_id}/recipients").json()["data"]
    return {r["phone_number"]: r["region"] for r in listed}


def test_inline_recipients_keep_their_region(client: TestClient) -> None:
    body = campaign_body(
        recipients=[
            {"phone_number": "+14155552671", "region": "us-fl"},
            {"phone_number": "+12125550123", "region": "FR"},
            {"phone_number": "+16175550123"},
        ]
    )
    created = client.post("/campaign", json=body)
    assert created.status_code == 201, created.text
    assert _regions(client, created.json()["id"]) == {
        "+14155552671": "US-FL",
        "+12125550123": "FR",
        "+16175550123": None,
    }


def test_a_bad_region_is_422_naming_the_field(client: TestClient) -> None:
    for bad in ("Florida", "U", "US-", "US_FL", "US-FLOR"):
        body = campaign_body(recipients=[{"phone_number": "+14155552671", "region": bad}])
        response = client.post("/campaign", json=body)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["field"] == "recipients.0.region", bad
    assert client.get("/campaign").json()["data"] == []


def test_a_batch_checks_and_stores_the_region(client: TestClient) -> None:
    cid = client.post("/campaign", json=campaign_body()).json()["id"]
    bad = {"recipients": [{"phone_number": "+14155552671", "region": "nowhere"}]}
    response = client.post(f"/campaign/{cid}/recipients", json=bad)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "recipients.0.region"
    good = {"recipients": [{"phone_number": "+14155552671", "region": "US-RI"}]}
    assert client.post(f"/campaign/{cid}/recipients", json=good).json()["accepted"] == 1
    assert _regions(client, cid) == {"+14155552671": "US-RI"}


def test_a_json_list_carries_the_region_into_the_campaign(client: TestClient) -> None:
    rows = [{"phone_number": "+14155552671", "region": "US-TX"}, {"phone_number": "+12125550123"}]
    list_id = import_json(client, rows)
    cid = client.post("/campaign", json=campaign_body(recipient_list_id=list_id)).json()["id"]
    assert _regions(client, cid) == {"+14155552671": "US-TX", "+12125550123": None}


def test_a_csv_region_column_is_the_region_not_metadata(client: TestClient) -> None:
    listed = import_csv(
        client,
        "phone_number,first_name,region\n"
        "+14155552671,Ada,us-fl\n"
        "+12125550123,Bob,\n"
        "+16175550123,Cy,Atlantis\n",
    )
    assert listed["row_count"] == 2
    rejected = rejected_rows(client, listed["id"])
    assert [r[2] for r in rejected[1:]] == [
        "invalid-region: an ISO 3166-1 country code (FR) or ISO 3166-2 subdivision (US-FL)"
    ]
    cid = client.post("/campaign", json=campaign_body(recipient_list_id=listed["id"])).json()["id"]
    recipients = client.get(f"/campaign/{cid}/recipients").json()["data"]
    assert {r["phone_number"]: (r["region"], r["metadata"]) for r in recipients} == {
        "+14155552671": ("US-FL", {"first_name": "Ada"}),
        "+12125550123": (None, {"first_name": "Bob"}),
    }
