"""Recipient lists import in the background: 202 at once, progress on GET, rejected rows for
download, lost imports reported failed, and no other request held up meanwhile."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.engine import session_factory
from dialer.db.models import ListState, RecipientList, Tenant
from dialer.runtime.imports import ImportRunner
from dialer.services.recipient_lists import STALE_AFTER_S
from dialer.settings import Settings
from tests.api.conftest import ManualClock, campaign_body, headers_for
from tests.api.lists import import_csv, import_json, rejected_rows, upload_csv, wait_imported


def _lists_of(engine: Engine, user_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(RecipientList)
                .join(Tenant, Tenant.id == RecipientList.tenant_id)
                .where(Tenant.user_id == user_id)
            )
            or 0
        )


def _list_in_state(engine: Engine, clock: ManualClock, **values: object) -> str:
    """A list of tenant ``alice`` written as it stands mid-import (or after)."""
    with session_factory(engine)() as session, session.begin():
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.user_id == "alice"))
        row = RecipientList(
            tenant_id=tenant_id,
            name="Half",
            row_count=3,
            rows_read=4,
            rejected_count=1,
            created_at=clock.now,
            **{"state": ListState.IMPORTING.value, "heartbeat_at": clock.now, **values},
        )
        session.add(row)
    return row.id


def test_an_upload_answers_202_importing_and_the_list_becomes_ready(client: TestClient) -> None:
    response = upload_csv(client, "phone_number,n\n+14155552671,1\n+14155552672,2\n")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "importing"
    assert body["failure_reason"] is None
    assert response.headers["location"] == f"/recipient_list/{body['id']}"
    done = wait_imported(client, body["id"])
    assert done["state"] == "ready"
    assert (done["rows_read"], done["accepted"], done["rejected_count"]) == (2, 2, 0)
    assert rejected_rows(client, body["id"]) == [["row", "phone_number", "reason"]]


def test_a_bad_file_is_422_naming_it_and_creates_nothing(
    client: TestClient, engine: Engine
) -> None:
    before = _lists_of(engine, "alice")
    for data in (b"", b"name,plan\nAda,gold\n", b"phone_number,n\xe9\n+14155552671,x\n"):
        response = upload_csv(client, data)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["field"] == "file"
    assert _lists_of(engine, "alice") == before


def test_every_rejected_row_can_be_downloaded_with_its_reason(client: TestClient) -> None:
    bad = [f"{i},x\n" for i in range(1_500)]  # more than one page of the download
    text = "phone_number,n\n+14155552671,ok\n" + "".join(bad) + "+14155552671,again\n"
    done = import_csv(client, text)
    assert (done["accepted"], done["rejected_count"], done["rows_read"]) == (1, 1_501, 1_502)
    rows = rejected_rows(client, done["id"])
    assert len(rows) == 1 + 1_501
    assert rows[1][:2] == ["3", "0"]
    assert rows[1][2].startswith("invalid-number")
    assert rows[-1] == ["1503", "+14155552671", "duplicate"]


def test_json_rows_import_in_the_background_too(client: TestClient) -> None:
    rows = [{"phone_number": "+14155552671"}, {"phone_number": "nope"}]
    list_id = import_json(client, rows)
    assert client.get(f"/recipient_list/{list_id}").json()["accepted"] == 1
    assert rejected_rows(client, list_id)[1][:2] == ["1", "nope"]


def test_a_campaign_cannot_take_a_list_that_is_not_ready(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    importing = _list_in_state(engine, clock)
    failed = _list_in_state(
        engine, clock, state=ListState.FAILED.value, failure_reason="interrupted"
    )
    refused = client.post("/campaign", json=campaign_body(recipient_list_id=importing))
    assert refused.status_code == 409, refused.text
    assert "still importing" in refused.json()["message"]
    refused = client.post("/campaign", json=campaign_body(recipient_list_id=failed))
    assert refused.status_code == 409, refused.text
    assert "failed to import (interrupted)" in refused.json()["message"]
    cid = client.post("/campaign", json=campaign_body()).json()["id"]
    patched = client.patch(f"/campaign/{cid}", json={"recipient_list_id": importing})
    assert patched.status_code == 409, patched.text


def test_an_import_with_a_stale_heartbeat_is_reported_failed_interrupted(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    alive = _list_in_state(engine, clock, heartbeat_at=clock.now - timedelta(seconds=60))
    lost = _list_in_state(
        engine, clock, heartbeat_at=clock.now - timedelta(seconds=STALE_AFTER_S + 1)
    )
    assert client.get(f"/recipient_list/{alive}").json()["state"] == "importing"
    body = client.get(f"/recipient_list/{lost}").json()
    assert (body["state"], body["failure_reason"]) == ("failed", "interrupted")
    assert (body["rows_read"], body["accepted"], body["rejected_count"]) == (4, 3, 1)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(RecipientList.state, RecipientList.failure_reason).where(
                RecipientList.id == lost
            )
        ).one()
    assert tuple(stored) == ("failed", "interrupted")


def test_other_tenants_write_while_a_large_list_imports(client: TestClient, engine: Engine) -> None:
    """On SQLite the import leaves the write lock between chunks: another tenant's writes
    go through meanwhile, none answers 500 ("database is locked")."""
    bob_number = "+16175550100"
    bob = headers_for(engine, "bob", bob_number)
    bob_campaign = campaign_body(phone_number_id=bob_number, caller_id_number=bob_number)
    rows = "".join(f"+1212{2_000_000 + i:07d},{i}\n" for i in range(12_000))
    response = upload_csv(client, "phone_number,n\n" + rows)
    assert response.status_code == 202, response.text
    list_id = response.json()["id"]
    statuses: list[int] = []
    during = 0
    while client.get(f"/recipient_list/{list_id}").json()["state"] == "importing":
        number = f"+1617555{len(statuses):04d}"
        statuses.append(
            client.post("/suppression", json={"phone_number": number}, headers=bob).status_code
        )
        made = client.post("/campaign", json=bob_campaign, headers=bob)
        statuses.append(made.status_code)
        if client.get(f"/recipient_list/{list_id}").json()["state"] == "importing":
            during += 1
    assert set(statuses) == {201}, statuses
    assert during >= 1
    done = wait_imported(client, list_id)
    assert (done["state"], done["accepted"]) == ("ready", 12_000)


def test_an_import_running_at_shutdown_leaves_its_list_failed_interrupted(
    engine: Engine, clock: ManualClock
) -> None:
    app = create_app(Settings(database_url=str(engine.url)), engine=engine, clock=clock)
    rows = "".join(f"+1212{2_000_000 + i:07d},{i}\n" for i in range(12_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers_for(engine, "alice"))
        response = upload_csv(client, "phone_number,n\n" + rows)
        assert response.status_code == 202, response.text
        list_id = response.json()["id"]
    # The app has shut down: the import stopped after its chunk and said why.
    with engine.connect() as conn:
        state, reason, read = conn.execute(
            sa.select(
                RecipientList.state, RecipientList.failure_reason, RecipientList.rows_read
            ).where(RecipientList.id == list_id)
        ).one()
    assert (state, reason) == ("failed", "interrupted")
    assert read < 12_000


def test_with_every_import_slot_taken_an_upload_is_503_and_creates_nothing(
    client: TestClient, engine: Engine
) -> None:
    client.app.state.ctx.imports = ImportRunner(most_running=0, reserve_wait_s=0.1)  # type: ignore[attr-defined]
    before = _lists_of(engine, "alice")
    response = upload_csv(client, "phone_number\n+14155552671\n")
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "busy"
    assert response.headers["retry-after"] == "60"
    assert _lists_of(engine, "alice") == before
