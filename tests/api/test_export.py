"""``GET /campaign/{id}/export``: the campaign's call attempts, streamed as CSV or JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import CallAttempt, Campaign, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.services.export import COLUMNS
from tests.api.conftest import CALLER, campaign_body
from tests.db import factories

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _campaign_with_attempts(client: TestClient, engine: Engine) -> str:
    """A campaign with three attempts: an answered call, a busy one retried, one in flight."""
    body = campaign_body(
        recipients=[{"phone_number": "+12125550101"}, {"phone_number": "+12125550102"}]
    )
    campaign_id = str(client.post("/campaign", json=body).json()["id"])
    with session_factory(engine)() as session, session.begin():
        campaign = session.get_one(Campaign, campaign_id)
        run = factories.run(session, campaign)
        first, second = session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == campaign_id).order_by(Recipient.id)
        )

        def attempt(recipient: Recipient, number: int, **fields: object) -> None:
            session.add(
                CallAttempt(
                    recipient_id=recipient.id,
                    campaign_id=campaign_id,
                    run_id=run.id,
                    attempt_number=number,
                    from_number=CALLER,
                    to_number=recipient.phone_number,
                    queued_at=T0,
                    **fields,
                )
            )

        attempt(
            first, 1, status=AttemptStatus.ENDED, outcome=Outcome.HUMAN, answered_by="human",
            dialed_at=T0 + timedelta(seconds=1), answered_at=T0 + timedelta(seconds=6),
            ended_at=T0 + timedelta(seconds=66), duration_s=60,
        )  # fmt: skip
        attempt(
            second, 1, status=AttemptStatus.ENDED, outcome=Outcome.BUSY,
            dialed_at=T0 + timedelta(seconds=1), ended_at=T0 + timedelta(seconds=3),
            error_code="486", error_message="busy: +12125550102 rejected the call",
        )  # fmt: skip
        attempt(second, 2, status=AttemptStatus.RINGING, dialed_at=T0 + timedelta(minutes=5))
    return campaign_id


def test_csv_is_the_default_with_numbers_masked(client: TestClient, engine: Engine) -> None:
    campaign_id = _campaign_with_attempts(client, engine)
    response = client.get(f"/campaign/{campaign_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="campaign-{campaign_id}-attempts.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [list(r) for r in rows[:1]] == [list(COLUMNS)]
    assert [(r["phone_number"], r["attempt_number"], r["status"]) for r in rows] == [
        ("+*******0101", "1", "ended"),
        ("+*******0102", "1", "ended"),
        ("+*******0102", "2", "ringing"),
    ]
    answered = rows[0]
    assert answered["queued_at"] == "2026-11-23T15:00:00Z"
    assert answered["started_at"] == "2026-11-23T15:00:01Z"
    assert answered["answered_at"] == "2026-11-23T15:00:06Z"
    assert answered["ended_at"] == "2026-11-23T15:01:06Z"
    assert (answered["outcome"], answered["amd"], answered["duration_s"]) == (
        "human",
        "human",
        "60",
    )
    busy = rows[1]
    assert (busy["outcome"], busy["answered_at"], busy["duration_s"]) == ("busy", "", "")
    assert busy["error_code"] == "486"
    assert busy["error_message"] == "busy: +*******0102 rejected the call"
    assert rows[2]["outcome"] == rows[2]["ended_at"] == ""
    assert "12125550102" not in response.text


def test_jsonl_with_full_numbers_when_asked(client: TestClient, engine: Engine) -> None:
    campaign_id = _campaign_with_attempts(client, engine)
    response = client.get(
        f"/campaign/{campaign_id}/export", params={"format": "jsonl", "unmask_numbers": "true"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["phone_number"] for r in rows] == ["+12125550101", "+12125550102", "+12125550102"]
    assert rows[1]["error_message"] == "busy: +12125550102 rejected the call"
    assert rows[2]["outcome"] is None
    assert rows[0]["duration_s"] == 60


def test_another_tenants_campaign_is_not_found(
    client: TestClient, engine: Engine, bob: dict[str, str]
) -> None:
    campaign_id = _campaign_with_attempts(client, engine)
    response = client.get(f"/campaign/{campaign_id}/export", headers=bob)
    assert response.status_code == 404
    assert response.json()["message"] == f"campaign {campaign_id} not found"
    assert client.get("/campaign/nope/export").status_code == 404


def test_an_unknown_format_is_refused_naming_the_parameter(
    client: TestClient, engine: Engine
) -> None:
    campaign_id = _campaign_with_attempts(client, engine)
    response = client.get(f"/campaign/{campaign_id}/export", params={"format": "xml"})
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["format"]
    unmask = client.get(f"/campaign/{campaign_id}/export", params={"unmask_numbers": "maybe"})
    assert unmask.status_code == 422
    assert [d["field"] for d in unmask.json()["detail"]] == ["unmask_numbers"]


def test_the_export_is_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/campaign/{campaign_id}/export"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    ref = parameters["format"]["schema"]["$ref"].removeprefix("#/components/schemas/")
    assert document["components"]["schemas"][ref]["enum"] == ["csv", "jsonl"]
    assert parameters["format"]["schema"]["default"] == "csv"
    assert "unmask_numbers" in parameters
    assert set(operation["responses"]["200"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "422" in operation["responses"]
