"""Recipient batches, the do-not-call list, and recipient lists (JSON and CSV)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.db.models import (
    CallerNumber,
    Campaign,
    Recipient,
    RecipientListEntry,
    Suppression,
)
from tests.api.conftest import campaign_body
from tests.api.lists import import_json, rejected_rows, upload_csv, wait_imported


def _campaign(client: TestClient) -> str:
    return str(client.post("/campaign", json=campaign_body()).json()["id"])


def test_batch_reports_each_rejection_and_keeps_good_rows(client: TestClient) -> None:
    assert client.post("/suppression", json={"phone_number": "+16175550199"}).status_code == 201
    cid = _campaign(client)
    rows = [
        {"phone_number": "(415) 555-2671", "metadata": {"n": 0}},
        {"phone_number": "not a number"},
        {"phone_number": "+14155552671"},
        {"phone_number": "+1 617 555 0199"},
        {"phone_number": "+12125550123", "time_zone": "America/New_York"},
    ]
    response = client.post(f"/campaign/{cid}/recipients", json={"recipients": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    reasons = {r["row"]: r["reason"] for r in body["rejected"]}
    assert reasons[1].startswith("invalid-number")
    assert reasons[2] == "duplicate"
    assert reasons[3] == "suppressed"
    again = client.post(f"/campaign/{cid}/recipients", json={"recipients": rows[:1]}).json()
    assert again["rejected"] == [{"row": 0, "phone_number": "+14155552671", "reason": "duplicate"}]
    listed = client.get(f"/campaign/{cid}/recipients").json()["data"]
    assert [r["phone_number"] for r in listed] == ["+14155552671", "+12125550123"]
    assert listed[1]["time_zone"] == "America/New_York"
    assert client.get(f"/campaign/{cid}").json()["counts"]["total"] == 2


def test_inline_invalid_number_is_422_and_changes_nothing(client: TestClient) -> None:
    body = campaign_body(recipients=[{"phone_number": "+14155552671"}, {"phone_number": "12"}])
    response = client.post("/campaign", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "recipients.1.phone_number"
    assert client.get("/campaign").json()["data"] == []


def test_recipient_listing_filters_by_status_and_pages(client: TestClient) -> None:
    cid = _campaign(client)
    numbers = [f"+1415555{n:04d}" for n in range(2671, 2676)]
    client.post(
        f"/campaign/{cid}/recipients", json={"recipients": [{"phone_number": n} for n in numbers]}
    )
    first = client.get(f"/campaign/{cid}/recipients", params={"limit": 3}).json()
    second = client.get(
        f"/campaign/{cid}/recipients", params={"limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert [r["phone_number"] for r in first["data"] + second["data"]] == numbers
    assert second["next_cursor"] is None
    done = client.get(f"/campaign/{cid}/recipients", params={"status": "done"}).json()
    assert done["data"] == []


def test_suppression_add_list_remove(client: TestClient) -> None:
    client.post("/suppression", json={"phone_number": "(415) 555-2671", "reason": "asked"})
    client.post("/suppression", json={"phone_number": "+14155552671"})
    listed = client.get("/suppression").json()["data"]
    assert [(s["phone_number"], s["reason"]) for s in listed] == [("+14155552671", "asked")]
    assert client.delete("/suppression/+14155552671").status_code == 204
    assert client.delete("/suppression/+14155552671").status_code == 404
    assert client.get("/suppression").json()["data"] == []


def test_csv_upload_with_bom_metadata_and_bad_rows(client: TestClient) -> None:
    csv_text = (
        "\ufeffphone_number,first_name,plan\r\n"
        "+14155552671,Ada,gold\r\n"
        "garbage,Bob,silver\r\n"
        "(212) 555-0123,Cy,\r\n"
        "+14155552671,Ada again,gold\r\n"
        "+16175550199,too,many,fields\r\n"
    )
    response = upload_csv(client, csv_text)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "importing"
    body = wait_imported(client, response.json()["id"])
    assert body["state"] == "ready"
    assert body["row_count"] == body["accepted"] == 2
    assert body["rejected_count"] == 3
    assert body["rows_read"] == 5
    rejected = rejected_rows(client, body["id"])
    assert rejected[0] == ["row", "phone_number", "reason"]
    reasons = {int(r[0]): r[2] for r in rejected[1:]}
    assert reasons[3].startswith("invalid-number")
    assert reasons[5] == "duplicate"
    assert reasons[6].startswith("malformed-row")
    assert [r[1] for r in rejected[1:]] == ["garbage", "+14155552671", ""]
    list_id = body["id"]
    assert client.get(f"/recipient_list/{list_id}").json()["row_count"] == 2
    cid = client.post("/campaign", json=campaign_body(recipient_list_id=list_id)).json()
    assert cid["recipient_list_name"] == "November"
    assert cid["recipient_list_row_count"] == 2
    assert cid["counts"]["pending"] == 2
    recipients = client.get(f"/campaign/{cid['id']}/recipients").json()["data"]
    assert recipients[0]["metadata"] == {"first_name": "Ada", "plan": "gold"}


def test_list_attach_marks_suppressed_numbers(client: TestClient) -> None:
    client.post("/suppression", json={"phone_number": "+12125550123"})
    rows = [{"phone_number": "+14155552671"}, {"phone_number": "+12125550123"}]
    list_id = import_json(client, rows)
    campaign = client.post("/campaign", json=campaign_body(recipient_list_id=list_id)).json()
    assert campaign["counts"]["pending"] == 1
    assert campaign["counts"]["suppressed"] == 1


def test_csv_without_phone_column_is_422(client: TestClient) -> None:
    response = upload_csv(client, "name,plan\nAda,gold\n")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "file"


def test_every_stored_number_is_e164_whatever_its_format(
    client: TestClient, engine: Engine
) -> None:
    """Recipients (inline, by dial plan, by batch, by list), list entries, suppressions and
    caller numbers: each is stored as E.164, and a suppression matches a number written
    otherwise."""
    client.post("/suppression", json={"phone_number": "617.555.0199"})
    listed = client.post(
        "/recipient_list", json={"name": "L", "recipients": [{"phone_number": "212 555 0124"}]}
    ).json()["id"]
    assert wait_imported(client, listed)["state"] == "ready"
    body = campaign_body(
        phone_number_id=None,
        caller_id_number=None,
        recipient_list_id=listed,
        dial_plan=[
            {
                "phone_number_id": "(415) 555-0100",
                "recipients": [{"phone_number": "+1 (212) 555-0123"}],
            }
        ],
        recipients=[{"phone_number": "1-617-555-0199"}],
    )
    del body["phone_number_id"], body["caller_id_number"]
    created = client.post("/campaign", json=body)
    assert created.status_code == 201, created.text
    campaign = created.json()
    (refused,) = campaign["recipient_batch"]["rejected"]
    assert refused["reason"] == "suppressed", "the do-not-call entry matched"
    batch = client.post(
        f"/campaign/{campaign['id']}/recipients",
        json={"recipients": [{"phone_number": "(212) 555-0125"}]},
    )
    assert batch.json()["accepted"] == 1
    with engine.connect() as connection:
        stored = [
            *connection.scalars(sa.select(Recipient.phone_number)),
            *connection.scalars(sa.select(RecipientListEntry.phone_number)),
            *connection.scalars(sa.select(Suppression.phone_number)),
            *connection.scalars(sa.select(Campaign.phone_number_id)),
            *connection.scalars(sa.select(CallerNumber.phone_number_id)),
        ]
    assert sorted(set(stored)) == [
        "+12125550123", "+12125550124", "+12125550125", "+14155550100", "+16175550199"
    ]  # fmt: skip
