"""Hostile bodies and parameters: each is a 422 naming the field (never a 400 or a 500),
answered the same on SQLite and PostgreSQL, and nothing stored breaks a later read."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from dialer.api import pagination
from dialer.api.schemas.json_object import MAX_JSON_BYTES, MAX_JSON_DEPTH
from dialer.services import greeting
from dialer.telephony.base import CallContext
from dialer.telephony.twilio import twiml
from tests.api.conftest import campaign_body

JSON = {"content-type": "application/json"}


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    return [d["field"] for d in body["detail"]]


def _campaign(client: TestClient) -> str:
    return str(client.post("/campaign", json=campaign_body()).json()["id"])


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/recipient_list", "/campaign"])
def test_json_nested_100000_deep_is_a_422_on_body(client: TestClient, path: str) -> None:
    response = client.post(path, content=_nested(100_000), headers=JSON)
    assert _fields(response) == ["body"]


def test_json_nested_1000_deep_is_a_422_on_body(client: TestClient) -> None:
    body = '{"name": "x", "recipients": ' + _nested(1_000) + "}"
    assert _fields(client.post("/campaign", content=body, headers=JSON)) == ["body"]
    assert _fields(client.post("/recipient_list", content=body, headers=JSON)) == ["body"]


def test_a_body_that_is_not_utf8_is_a_422_on_body(client: TestClient) -> None:
    response = client.post("/campaign", content=b'{"name": "\xff\xfe"}', headers=JSON)
    assert _fields(response) == ["body"]
    cid = _campaign(client)
    assert _fields(client.patch(f"/campaign/{cid}", content=b"\xe4\\\xb2", headers=JSON)) == [
        "body"
    ]


def test_malformed_json_names_the_body_not_a_position(client: TestClient) -> None:
    response = client.post("/campaign", content=b'{"name": "x",', headers=JSON)
    assert _fields(response) == ["body"]
    assert "not valid JSON" in response.json()["detail"][0]["reason"]


@pytest.mark.parametrize("path", ["/campaign", "/suppression"])
def test_an_empty_cursor_is_a_422_naming_cursor(client: TestClient, path: str) -> None:
    assert _fields(client.get(path, params={"cursor": ""})) == ["cursor"]


def test_a_cursor_with_a_naive_date_is_a_422_naming_cursor(client: TestClient) -> None:
    _campaign(client)
    naive = pagination.encode(["2026-11-23T15:00:00", "ffffffff"])
    assert _fields(client.get("/campaign", params={"cursor": naive})) == ["cursor"]
    aware = pagination.encode(["2026-11-23T15:00:00+00:00", "ffffffff"])
    assert client.get("/campaign", params={"cursor": aware}).status_code == 200


def _deep_object(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_metadata_256_deep_is_refused_and_reads_keep_working(client: TestClient) -> None:
    cid = _campaign(client)
    row = {"phone_number": "+14155552671", "metadata": _deep_object(256)}
    response = client.post(f"/campaign/{cid}/recipients", json={"recipients": [row]})
    assert _fields(response) == ["recipients.0.metadata"]
    assert client.get(f"/campaign/{cid}/recipients").status_code == 200


def test_json_objects_are_capped_in_depth_and_size(client: TestClient) -> None:
    cid = _campaign(client)
    at_cap = {"phone_number": "+14155552671", "assistant_overrides": _deep_object(MAX_JSON_DEPTH)}
    accepted = client.post(f"/campaign/{cid}/recipients", json={"recipients": [at_cap]})
    assert accepted.json()["accepted"] == 1, accepted.text
    deeper = {"phone_number": "+14155552672", "assistant_overrides": _deep_object(17)}
    response = client.post(f"/campaign/{cid}/recipients", json={"recipients": [deeper]})
    assert _fields(response) == ["recipients.0.assistant_overrides"]
    big = {"phone_number": "+14155552673", "metadata": {"note": "x" * MAX_JSON_BYTES}}
    response = client.post("/campaign", json=campaign_body(recipients=[big]))
    assert _fields(response) == ["recipients.0.metadata"]
    policy = _deep_object(MAX_JSON_DEPTH + 1)
    assert _fields(client.patch(f"/campaign/{cid}", json={"retry_policy": policy})) == [
        "retry_policy"
    ]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_are_refused_on_every_database(client: TestClient, number: str) -> None:
    cid = _campaign(client)
    row = '{"phone_number": "+14155552671", "metadata": {"score": [1, NUMBER]}}'
    row = row.replace("NUMBER", number)
    response = client.post(
        f"/campaign/{cid}/recipients", content=f'{{"recipients": [{row}]}}', headers=JSON
    )
    assert _fields(response) == ["recipients.0.metadata"]
    assert "score.1" in response.json()["detail"][0]["reason"]
    patched = client.patch(
        f"/campaign/{cid}",
        content=f'{{"recipients": [{row.replace("metadata", "assistant_overrides")}]}}',
        headers=JSON,
    )
    assert _fields(patched) == ["recipients.0.assistant_overrides"]
    listed = client.post(
        "/recipient_list", content=f'{{"name": "l", "recipients": [{row}]}}', headers=JSON
    )
    assert _fields(listed) == ["recipients.0.metadata"]
    assert client.get(f"/campaign/{cid}/recipients").json()["data"] == []


def test_a_405_allows_every_method_of_the_path(client: TestClient) -> None:
    cid = _campaign(client)
    response = client.put(f"/campaign/{cid}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert response.json()["error"] == "method_not_allowed"
    listing = client.delete(f"/campaign/{cid}/recipients")
    assert listing.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("field", ["voicemail_message", "opening_message_template"])
def test_control_characters_that_twiml_cannot_carry_are_refused(
    client: TestClient, field: str
) -> None:
    for bad in ("Hello\x07", "a\x1bb", "\x0b", "x\ufffe"):
        assert _fields(client.post("/campaign", json=campaign_body(**{field: bad}))) == [field]
    cid = _campaign(client)
    assert _fields(client.patch(f"/campaign/{cid}", json={field: "bell\x07"})) == [field]
    fine = client.patch(f"/campaign/{cid}", json={field: "Hello,\tplease\r\ncall back"})
    assert fine.status_code == 200, fine.text


def test_the_document_says_what_the_server_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ErrorBody" in schemas
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in ("422", "500"):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == error_ref, (method, path, status)
            if path.startswith("/campaign"):
                assert operation["security"] == [{"HTTPBearer": [], "APIKeyHeader": []}]
                assert "401" in responses
    create = schemas["CampaignCreate"]
    assert create["not"]["required"] == ["phone_number_id", "dial_plan"]
    assert "pattern" in create["properties"]["name"]
    cursor = next(
        p for p in spec["paths"]["/campaign"]["get"]["parameters"] if p["name"] == "cursor"
    )
    assert cursor["schema"]["anyOf"][0]["minLength"] == 1


def test_twiml_stays_parseable_whatever_the_recipient_data() -> None:
    opening = greeting.render("Hi {{name}}", {"name": "Ann\x07\x1b\ufffe"})
    assert opening == "Hi Ann"
    ctx = CallContext(
        attempt_id=1,
        campaign_id="c",
        assistant_id="a",
        run_id="r",
        recipient_id=1,
        opening_message=opening,
        campaign_context="stored before the check\x0c",
        speech_settings={},
        assistant_overrides={"note": "\x01"},
        returning=False,
        summaries=("summary\x02",),
        voicemail_message="Call us\x07 back",
    )
    for answered_by, stream in (("machine_end_beep", None), ("human", "wss://example.test/s")):
        document = ElementTree.fromstring(twiml.for_answer(ctx, answered_by, stream))
        assert document.tag == "Response"
    voicemail = ElementTree.fromstring(twiml.for_answer(ctx, "machine_end_beep", None))
    assert voicemail.findtext("Say") == "Call us back"


def test_a_nul_in_metadata_names_the_field(client: TestClient) -> None:
    cid = _campaign(client)
    row = {"phone_number": "+14155552671", "metadata": {"notes": ["ok", {"k\x00": 1}]}}
    response = client.post(f"/campaign/{cid}/recipients", json={"recipients": [row]})
    assert _fields(response) == ["recipients.0.metadata"]
    assert "notes.1.k" in response.json()["detail"][0]["reason"]


def test_a_lone_surrogate_in_metadata_names_the_field(client: TestClient) -> None:
    cid = _campaign(client)
    row = '{"phone_number": "+14155552671", "metadata": {"a": ["\\ud800"]}}'
    response = client.post(
        f"/campaign/{cid}/recipients", content=f'{{"recipients": [{row}]}}', headers=JSON
    )
    assert _fields(response) == ["recipients.0.metadata"]
    assert response.json()["detail"][0]["reason"].endswith("surrogate (not Unicode text) at a.0")


def test_the_document_marks_rules_it_cannot_state(client: TestClient) -> None:
    """Fields checked beyond JSON Schema carry ``x-server-checks``; fields that may not be
    null have no null in their schema."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    patch = schemas["CampaignPatch"]["properties"]
    assert "anyOf" not in patch["name"]
    assert patch["name"]["type"] == "string"
    assert patch["retry_policy"]["type"] == "object"
    assert "x-server-checks" in patch["caller_id_number"]
    assert "x-server-checks" in schemas["CampaignCreate"]["properties"]["dial_plan"]
    assert "x-server-checks" in schemas["SuppressionIn"]["properties"]["phone_number"]
    assert _fields(client.post("/campaign", json=campaign_body(retry_policy=None))) == [
        "retry_policy"
    ]
