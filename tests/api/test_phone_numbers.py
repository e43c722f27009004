"""``/phone_number``: a tenant's caller numbers, and campaigns held to them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.api.app import create_app
from dialer.db.models import CallerNumber, Campaign, PhoneNumber
from dialer.settings import Settings
from tests.api.conftest import CALLER, ManualClock, campaign_body, headers_for

BOBS = "+12125550000"


def _register(client: TestClient, number: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/phone_number", json={"number": number, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def bob_numbered(client: TestClient, engine: Engine) -> dict[str, str]:
    """Headers of tenant ``bob``, who has registered :data:`BOBS`."""
    headers = headers_for(engine, "bob")
    registered = client.post("/phone_number", json={"number": BOBS}, headers=headers)
    assert registered.status_code == 201, registered.text
    return headers


def test_a_number_in_any_format_is_registered_as_e164(client: TestClient) -> None:
    created = _register(client, "+1 (212) 555-0000", name="Sales line")
    assert created["number"] == "+12125550000"
    assert created["name"] == "Sales line"
    assert created["provider_status"] == "owned"
    fetched = client.get(f"/phone_number/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_an_invalid_number_is_a_422_naming_it(client: TestClient) -> None:
    response = client.post("/phone_number", json={"number": "555-0000"})
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["detail"]] == ["number"]


@pytest.fixture
def owning_one(engine: Engine, clock: ManualClock) -> Iterator[TestClient]:
    """A client of ``alice`` on an API whose simulator account owns only :data:`CALLER`."""
    settings = Settings(database_url=str(engine.url), simulator_numbers=CALLER)
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers_for(engine, "alice"))
        yield client


def test_a_number_the_provider_does_not_confirm_is_a_422(
    owning_one: TestClient, engine: Engine
) -> None:
    refused = owning_one.post("/phone_number", json={"number": "(212) 555-0000"})
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["detail"]
    assert problem["field"] == "number"
    assert "neither owns +12125550000 nor has it verified" in problem["reason"]
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(PhoneNumber)) == 0
    assert _register(owning_one, CALLER)["number"] == CALLER


def test_a_number_has_one_tenant(client: TestClient, bob_numbered: dict[str, str]) -> None:
    again = client.post("/phone_number", json={"number": "212-555-0000"}, headers=bob_numbered)
    assert again.status_code == 409
    assert "registered already" in again.json()["message"]
    theirs = client.post("/phone_number", json={"number": BOBS})
    assert theirs.status_code == 409
    assert "another tenant" in theirs.json()["message"]
    assert [n["number"] for n in client.get("/phone_number").json()["data"]] == [CALLER]


def test_listing_pages_through_the_tenants_numbers_in_order(
    client: TestClient, bob_numbered: dict[str, str]
) -> None:
    for number in ("+14155550103", "+14155550101", "+14155550102"):
        _register(client, number)
    first = client.get("/phone_number", params={"limit": 3}).json()
    assert [n["number"] for n in first["data"]] == [CALLER, "+14155550101", "+14155550102"]
    second = client.get("/phone_number", params={"limit": 3, "cursor": first["next_cursor"]})
    assert [n["number"] for n in second.json()["data"]] == ["+14155550103"]
    assert second.json()["next_cursor"] is None
    assert client.get("/phone_number", params={"cursor": "garbage"}).status_code == 422
    listed = client.get("/phone_number", headers=bob_numbered).json()["data"]
    assert [n["number"] for n in listed] == [BOBS]


def test_another_tenants_number_answers_404(
    client: TestClient, bob_numbered: dict[str, str]
) -> None:
    mine = _register(client, "+14155550101")
    assert client.get(f"/phone_number/{mine['id']}", headers=bob_numbered).status_code == 404
    assert client.delete(f"/phone_number/{mine['id']}", headers=bob_numbered).status_code == 404
    assert client.get(f"/phone_number/{mine['id']}").status_code == 200
    assert client.get("/phone_number/nope").status_code == 404


def test_a_campaign_may_not_use_another_tenants_number(
    client: TestClient, bob_numbered: dict[str, str], engine: Engine
) -> None:
    with engine.connect() as connection:
        bobs_id = connection.scalar(sa.select(PhoneNumber.id).where(PhoneNumber.number == BOBS))
    plan = [
        {"phone_number_id": CALLER, "recipients": []},
        {"phone_number_id": bobs_id, "recipients": []},
    ]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"phone_number_id": BOBS}, "phone_number_id"),
        ({"phone_number_id": bobs_id}, "phone_number_id"),
        ({"caller_id_number": "(212) 555-0000"}, "caller_id_number"),
        ({"phone_number_id": None, "caller_id_number": None, "dial_plan": plan},
         "dial_plan.1.phone_number_id"),
        ({"phone_number_id": None, "caller_id_number": None,
          "dial_plan": [{"phone_number_id": CALLER, "caller_id_number": BOBS}]},
         "dial_plan.0.caller_id_number"),
        ({"phone_number_id": "pn_123"}, "phone_number_id"),
    ]  # fmt: skip
    for override, field in cases:
        body = {k: v for k, v in campaign_body(**override).items() if v is not None}
        response = client.post("/campaign", json=body)
        assert response.status_code == 422, (override, response.text)
        assert [d["field"] for d in response.json()["detail"]] == [field], override
    cid = client.post("/campaign", json=campaign_body()).json()["id"]
    for change in ({"phone_number_id": BOBS}, {"caller_id_number": bobs_id}):
        patched = client.patch(f"/campaign/{cid}", json=change)
        assert patched.status_code == 422, patched.text
        assert [d["field"] for d in patched.json()["detail"]] == list(change)
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 1
        stored = connection.execute(sa.select(Campaign.phone_number_id, Campaign.caller_id_number))
        assert stored.one() == (CALLER, CALLER)


def test_numbers_are_named_by_id_or_any_format_and_stored_e164(
    client: TestClient, engine: Engine
) -> None:
    second = _register(client, "+12125550100")
    body = campaign_body(phone_number_id="+1 (415) 555-0100", caller_id_number=second["id"])
    created = client.post("/campaign", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["phone_number_id"] == CALLER
    assert created.json()["caller_id_number"] == "+12125550100"
    patched = client.patch(
        f"/campaign/{created.json()['id']}", json={"caller_id_number": "415.555.0100"}
    )
    assert patched.json()["caller_id_number"] == CALLER
    plan = campaign_body(
        dial_plan=[
            {"phone_number_id": second["id"], "recipients": []},
            {"phone_number_id": "(415) 555-0100", "caller_id_number": "212 555 0100"},
        ]
    )
    del plan["phone_number_id"], plan["caller_id_number"]
    with_plan = client.post("/campaign", json=plan)
    assert with_plan.status_code == 201, with_plan.text
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(CallerNumber.phone_number_id, CallerNumber.caller_id_number).order_by(
                CallerNumber.phone_number_id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("+12125550100", None), (CALLER, "+12125550100")]
    twice = campaign_body(
        dial_plan=[{"phone_number_id": second["id"]}, {"phone_number_id": "2125550100"}]
    )
    del twice["phone_number_id"], twice["caller_id_number"]
    response = client.post("/campaign", json=twice)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "dial_plan.1.phone_number_id"


def test_a_number_in_use_is_kept_until_its_campaigns_complete(client: TestClient) -> None:
    number_id = client.get("/phone_number").json()["data"][0]["id"]
    body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
    cid = client.post("/campaign", json=body).json()["id"]
    refused = client.delete(f"/phone_number/{number_id}")
    assert refused.status_code == 409
    assert cid in refused.json()["message"]
    assert client.post(f"/campaign/{cid}/start").status_code == 200
    stopped = client.post(f"/campaign/{cid}/stop")
    assert stopped.json()["status"] == "completed", stopped.text
    assert client.delete(f"/phone_number/{number_id}").status_code == 204
    assert client.get(f"/phone_number/{number_id}").status_code == 404
    # A completed campaign does not hold its number: it cannot start again without it.
    restart = client.post(f"/campaign/{cid}/start")
    assert restart.status_code == 409, restart.text
    assert CALLER in restart.json()["message"]
    _register(client, CALLER)
    assert client.post(f"/campaign/{cid}/start").json()["status"] == "running"


def test_a_quarantined_number_shows_why_and_an_operator_releases_it(
    client: TestClient, engine: Engine, bob_numbered: dict[str, str]
) -> None:
    created = _register(client, "+12125550199")
    with Session(engine) as session, session.begin():
        row = session.get_one(PhoneNumber, created["id"])
        row.quarantined_at = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
        row.quarantine_reason = "number.quarantined.carrier-rejections"
    listed = {
        n["number"]: n["quarantine_reason"] for n in client.get("/phone_number").json()["data"]
    }
    assert listed["+12125550199"] == "number.quarantined.carrier-rejections"
    assert listed[CALLER] is None
    assert (
        client.post(f"/phone_number/{created['id']}/release", headers=bob_numbered).status_code
        == 404
    )
    released = client.post(f"/phone_number/{created['id']}/release")
    assert released.status_code == 200, released.text
    body = released.json()
    assert (body["quarantined_at"], body["quarantine_reason"]) == (None, None)
    assert body["released_at"] is not None
    again = client.post(f"/phone_number/{created['id']}/release")
    assert again.json()["released_at"] == body["released_at"], "a no-op when not quarantined"
    assert client.post("/phone_number/nope/release").status_code == 404
