"""``/consent``, a campaign's ``frequency_caps`` and ``require_consent``, consent on recipient
input: through the API, tenant-scoped, 422 for bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import ApiKey, RecipientListEntry, Tenant
from dialer.services import tenant_limits
from tests.api.conftest import campaign_body
from tests.api.lists import import_csv, import_json

CONSENT = {
    "basis": "express_written",
    "captured_at": "2026-11-01T09:30:00Z",
    "source": "web-form:signup",
    "evidence": "submission 7f3a",
}


def _consents(client: TestClient, number: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/consent", params={"phone_number": number, **params})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_consent_is_recorded_listed_by_number_and_never_replaced(
    client: TestClient, bob: dict[str, str], engine: Engine
) -> None:
    first = client.post("/consent", json={"phone_number": "(415) 555-2671", **CONSENT})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["phone_number"] == "+14155552671"
    with session_factory(engine)() as session:
        [key_id] = session.scalars(
            sa.select(ApiKey.id).join(Tenant).where(Tenant.user_id == "alice")
        ).all()
    assert body["created_by"] == key_id
    assert (body["basis"], body["source"], body["evidence"]) == (
        "express_written",
        "web-form:signup",
        "submission 7f3a",
    )
    newer = {**CONSENT, "basis": "express", "captured_at": "2026-11-20T09:30:00+01:00"}
    assert (
        client.post("/consent", json={"phone_number": "+14155552671", **newer}).status_code == 201
    )
    client.post("/consent", json={"phone_number": "+12125550123", **CONSENT})

    listed = _consents(client, "+1 415 555 2671")
    assert [c["basis"] for c in listed] == ["express_written", "express"]
    page = client.get("/consent", params={"phone_number": "+14155552671", "limit": 1}).json()
    assert len(page["data"]) == 1
    rest = _consents(client, "+14155552671", cursor=page["next_cursor"])
    assert [c["id"] for c in rest] == [listed[1]["id"]]
    assert len(client.get("/consent").json()["data"]) == 3
    # Another tenant sees none of them.
    assert client.get("/consent", headers=bob).json()["data"] == []


def test_bad_consent_is_a_422_naming_the_field(client: TestClient) -> None:
    cases = [
        ({**CONSENT, "basis": "implied"}, "basis"),
        ({**CONSENT, "captured_at": "2026-11-01T09:30:00"}, "captured_at"),
        ({**CONSENT, "source": "x" * 201}, "source"),
        ({**CONSENT, "evidence": "x" * 1001}, "evidence"),
    ]
    for body, field in cases:
        response = client.post("/consent", json={"phone_number": "+14155552671", **body})
        assert response.status_code == 422, (field, response.text)
        assert response.json()["detail"][0]["field"] == field
    bad_number = client.post("/consent", json={"phone_number": "12", **CONSENT})
    assert bad_number.status_code == 422
    assert bad_number.json()["detail"][0]["field"] == "phone_number"
    assert client.get("/consent", params={"phone_number": "12"}).status_code == 422
    assert client.get("/consent").json()["data"] == []


def test_consent_comes_with_recipients_inline_and_in_lists(
    client: TestClient, engine: Engine
) -> None:
    created = client.post(
        "/campaign",
        json=campaign_body(
            require_consent=True,
            recipients=[{"phone_number": "+14155552671", "consent": CONSENT}],
        ),
    )
    assert created.status_code == 201, created.text
    assert created.json()["require_consent"] is True
    cid = created.json()["id"]
    added = client.post(
        f"/campaign/{cid}/recipients",
        json={"recipients": [{"phone_number": "+12125550123", "consent": CONSENT}]},
    )
    assert added.status_code == 200, added.text
    import_json(client, [{"phone_number": "+16175550199", "consent": CONSENT}])
    listed = import_csv(
        client,
        "phone_number,first_name,consent_basis,consent_captured_at,consent_source\n"
        "+13125550100,Ada,existing_relationship,2026-10-01T00:00:00Z,crm\n"
        "+13125550101,Bob,,,\n"
        "+13125550102,Cy,maybe,2026-10-01T00:00:00Z,crm\n",
    )
    assert listed["row_count"] == 2
    assert listed["rejected_count"] == 1  # the unknown basis
    for number in ("+14155552671", "+12125550123", "+16175550199"):
        [record] = _consents(client, number)
        assert record["source"] == "web-form:signup"
    [from_csv] = _consents(client, "+13125550100")
    assert (from_csv["basis"], from_csv["source"]) == ("existing_relationship", "crm")
    assert _consents(client, "+13125550101") == []
    with session_factory(engine)() as session:
        stored = session.scalars(
            sa.select(RecipientListEntry.metadata_).where(
                RecipientListEntry.list_id == listed["id"]
            )
        ).all()
    assert sorted(m["first_name"] for m in stored) == ["Ada", "Bob"]
    assert all(set(m) == {"first_name"} for m in stored), "the consent columns are not metadata"


def test_a_campaigns_caps_may_only_be_stricter_than_its_tenants(
    client: TestClient, engine: Engine
) -> None:
    strict = {"attempts_per_day": 2, "attempts_per_week": 5, "quiet_days_after_answer": 1}
    created = client.post("/campaign", json=campaign_body(frequency_caps=strict))
    assert created.status_code == 201, created.text
    assert created.json()["frequency_caps"] == strict
    cid = created.json()["id"]
    assert client.get(f"/campaign/{cid}").json()["frequency_caps"] == strict
    assert client.get(f"/campaign/{cid}").json()["require_consent"] is False

    looser = client.patch(f"/campaign/{cid}", json={"frequency_caps": {"attempts_per_day": 4}})
    assert looser.status_code == 422
    assert looser.json()["detail"] == [
        {"field": "frequency_caps.attempts_per_day", "reason": "must be at most the tenant's 3"}
    ]
    with session_factory(engine)() as session, session.begin():
        tenant_limits.set_limits(
            session, "alice", attempts_per_day=5, quiet_days_after_answer=2, now=datetime.now(UTC)
        )
    now_allowed = client.patch(f"/campaign/{cid}", json={"frequency_caps": {"attempts_per_day": 4}})
    assert now_allowed.status_code == 200, now_allowed.text
    assert now_allowed.json()["frequency_caps"] == {"attempts_per_day": 4}
    too_quiet = client.post(
        "/campaign", json=campaign_body(frequency_caps={"quiet_days_after_answer": 1})
    )
    assert too_quiet.status_code == 422
    assert too_quiet.json()["detail"][0]["field"] == "frequency_caps.quiet_days_after_answer"
    zero = client.post("/campaign", json=campaign_body(frequency_caps={"attempts_per_week": 0}))
    assert zero.status_code == 422
    cleared = client.patch(f"/campaign/{cid}", json={"frequency_caps": None})
    assert cleared.status_code == 200
    assert cleared.json()["frequency_caps"] is None
    refused = client.patch(f"/campaign/{cid}", json={"require_consent": None})
    assert refused.status_code == 422
