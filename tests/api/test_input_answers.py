"""Answers to bad input that say everything at once: every offending field of a body in one
422, where a JSON body stops parsing and why, national numbers of a region in a CSV, and a
CSV header without a phone column listing what it has."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.json_body import loads
from dialer.db.engine import session_factory
from dialer.db.models import Campaign, Recipient, RecipientList, RecipientListEntry
from dialer.errors import ValidationError
from tests.api.conftest import campaign_body
from tests.api.lists import wait_imported

JSON = {"Content-Type": "application/json"}


def _fields(response: object) -> list[str]:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    return [d["field"] for d in response.json()["detail"]]  # type: ignore[attr-defined]


def _campaigns(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Campaign)) or 0)


def test_a_create_names_every_unregistered_number_and_bad_recipient_at_once(
    client: TestClient, engine: Engine
) -> None:
    body = campaign_body(
        phone_number_id="+14155550199",
        caller_id_number="+14155550198",
        opening_message_template="Hello {{first_name}}",
        recipients=[
            {"phone_number": "12", "metadata": {"first_name": "Ann"}},
            {"phone_number": "+14155550123", "metadata": {}},
        ],
    )
    response = client.post("/campaign", json=body)
    assert sorted(_fields(response)) == [
        "caller_id_number",
        "phone_number_id",
        "recipients.0.phone_number",
        "recipients.1.metadata",
    ]
    answer = response.json()
    # The summary names them too, and nothing was created.
    assert "phone_number_id" in answer["message"]
    assert "recipients.1.metadata" in answer["message"]
    assert _campaigns(engine) == 0


def test_a_dial_plan_names_each_entry_at_fault(client: TestClient) -> None:
    body = campaign_body(
        phone_number_id=None,
        caller_id_number=None,
        dial_plan=[
            {"phone_number_id": "+14155550199", "recipients": [{"phone_number": "+14155550123"}]},
            {"phone_number_id": "+14155550100", "recipients": [{"phone_number": "nope"}]},
        ],
    )
    del body["phone_number_id"], body["caller_id_number"]
    assert sorted(_fields(client.post("/campaign", json=body))) == [
        "dial_plan.0.phone_number_id",
        "dial_plan.1.recipients.0.phone_number",
    ]


def test_a_patch_names_every_bad_field_and_changes_nothing(client: TestClient) -> None:
    created = client.post("/campaign", json=campaign_body())
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    response = client.patch(
        f"/campaign/{cid}",
        json={
            "phone_number_id": "+14155550199",
            "schedule_start_time": "2026-12-02T10:00:00Z",
            "recipient_list_id": "no-such-list",
            "recipients": [{"phone_number": "x"}],
        },
    )
    assert sorted(_fields(response)) == [
        "phone_number_id",
        "recipient_list_id",
        "recipients.0.phone_number",
    ]
    after = client.get(f"/campaign/{cid}").json()
    assert after["schedule_start_time"] is None
    assert after["counts"]["total"] == 0


def test_a_patch_names_a_schedule_end_before_its_stored_start_with_the_others(
    client: TestClient,
) -> None:
    cid = client.post(
        "/campaign", json=campaign_body(schedule_start_time="2026-12-02T10:00:00Z")
    ).json()["id"]
    response = client.patch(
        f"/campaign/{cid}",
        json={"schedule_end_time": "2026-12-01T10:00:00Z", "caller_id_number": "+14155550198"},
    )
    assert sorted(_fields(response)) == ["caller_id_number", "schedule_end_time"]


def test_field_errors_of_the_body_schema_come_in_one_answer(client: TestClient) -> None:
    body = campaign_body(max_concurrency=0, name="", machine_detection_timeout_seconds=99)
    assert sorted(_fields(client.post("/campaign", json=body))) == [
        "machine_detection_timeout_seconds",
        "max_concurrency",
        "name",
    ]


def test_a_missing_caller_is_named_with_the_fields_errors(client: TestClient) -> None:
    body = campaign_body(name="", max_concurrency=0)
    del body["phone_number_id"]
    response = client.post("/campaign", json=body)
    assert sorted(_fields(response)) == ["body", "max_concurrency", "name"]
    reasons = [d["reason"] for d in response.json()["detail"]]
    assert "one of phone_number_id or dial_plan is required" in reasons
    both = campaign_body(name="", dial_plan=[{"phone_number_id": "+14155550100"}])
    response = client.post("/campaign", json=both)
    assert sorted(_fields(response)) == ["body", "name"]
    assert "phone_number_id and dial_plan are mutually exclusive" in response.text


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            '{\n  "name": "x",\n  "max_concurrency": 3\n  "assistant_id": "a"\n}',
            "line 4, column 3: expected ',' or '}' after an object member",
        ),
        ('{"recipients": [1, 2 3]}', "line 1, column 22: expected ',' or ']' after an array"),
        ('{"name": "x",}', "line 1, column 14: expected a member name in double quotes after ','"),
        ('{"a": [1,]}', "line 1, column 10: expected a value after ','"),
        ('{"name" "x"}', "line 1, column 9: expected ':' after an object member's name"),
        ('{"name": "x', "line 1, column 10: a string starts here and is not closed"),
        ('{"name": "x"} []', "line 1, column 15: unexpected data after the end"),
        ('{"a": [1, {"b": 2}', "line 1, column 19: the body ends early: expected ',' or ']'"),
        ('{"a": nul}', "line 1, column 7: expected a value"),
        ('{"a": "\\q"}', "line 1, column 8: invalid escape in a string"),
        ("", "the body is empty"),
    ],
)
def test_a_json_syntax_error_says_where_and_what_was_expected(text: str, said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        loads(text.encode())
    assert caught.value.field == "body"
    assert said in caught.value.reason
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # the cases are real syntax errors


def test_a_malformed_body_answer_gives_the_line_and_column(client: TestClient) -> None:
    response = client.post("/campaign", content=b'{\n"name": "x"\n"a": 1}', headers=JSON)
    assert _fields(response) == ["body"]
    reason = response.json()["detail"][0]["reason"]
    assert reason.startswith("not valid JSON: line 3, column 1: expected ',' or '}'"), reason


def _upload(client: TestClient, text: str, **form: str) -> object:
    return client.post(
        "/recipient_list",
        data={"name": "UK", **form},
        files={"file": ("list.csv", io.BytesIO(text.encode()), "text/csv")},
    )


def test_national_numbers_of_the_default_region_import_as_e164(
    client: TestClient, engine: Engine
) -> None:
    text = "phone_number,name\n020 7946 0958,Ann\n+1 415 555 0123,Bob\n(415) 555-0124,Cy\n"
    response = _upload(client, text, default_region="gb")
    assert response.status_code == 202, response.text  # type: ignore[attr-defined]
    listed = wait_imported(client, response.json()["id"])  # type: ignore[attr-defined]
    assert (listed["accepted"], listed["rejected_count"]) == (2, 1)
    with session_factory(engine)() as session:
        numbers = set(session.scalars(sa.select(RecipientListEntry.phone_number)))
    # National: London; an explicit +1 stays American; a US national number is not British.
    assert numbers == {"+442079460958", "+14155550123"}


def test_without_a_default_region_national_numbers_are_american(client: TestClient) -> None:
    response = _upload(client, "phone_number\n(415) 555-0124\n020 7946 0958\n")
    listed = wait_imported(client, response.json()["id"])  # type: ignore[attr-defined]
    assert (listed["accepted"], listed["rejected_count"]) == (1, 1)


@pytest.mark.parametrize("region", ["XX", "G", "GBR", "1A", ""])
def test_an_unknown_default_region_is_a_422_naming_it_and_creates_nothing(
    client: TestClient, engine: Engine, region: str
) -> None:
    response = _upload(client, "phone_number\n020 7946 0958\n", default_region=region)
    assert _fields(response) == ["default_region"]
    with session_factory(engine)() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(RecipientList)) == 0


def test_a_bad_name_and_a_bad_region_are_named_together(client: TestClient) -> None:
    response = client.post(
        "/recipient_list",
        data={"name": " ", "default_region": "ZZ"},
        files={"file": ("list.csv", io.BytesIO(b"phone_number\n"), "text/csv")},
    )
    assert sorted(_fields(response)) == ["default_region", "name"]


def test_a_header_without_a_phone_column_lists_the_columns_found(
    client: TestClient, engine: Engine
) -> None:
    response = _upload(client, "Phone Number,first name,Tel\n+14155550123,Ann,x\n")
    assert _fields(response) == ["file"]
    reason = response.json()["detail"][0]["reason"]  # type: ignore[attr-defined]
    assert "no phone_number column" in reason
    assert "found 3 columns: 'Phone Number', 'first name', 'Tel'" in reason
    with session_factory(engine)() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Recipient)) == 0


def test_a_wide_header_without_a_phone_column_lists_a_few_columns(client: TestClient) -> None:
    header = ",".join(f"c{i}" for i in range(60))
    response = _upload(client, header + "\n")
    reason = response.json()["detail"][0]["reason"]  # type: ignore[attr-defined]
    assert "found 60 columns: 'c0', 'c1'" in reason
    assert "and 40 more" in reason
    assert "'c59'" not in reason
