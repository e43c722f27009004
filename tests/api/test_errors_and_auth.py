"""Bad input is 422 naming the field; credentials and tenants are checked on every route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dialer.api.limits import MAX_JSON_BYTES
from tests.api.conftest import campaign_body

BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"max_concurrency": 201}, "max_concurrency"),
    ({"max_concurrency": "ten"}, "max_concurrency"),
    ({"machine_detection_timeout_seconds": 2}, "machine_detection_timeout_seconds"),
    ({"machine_detection_timeout_seconds": 61}, "machine_detection_timeout_seconds"),
    ({"short_term_summaries_limit": -1}, "short_term_summaries_limit"),
    (
        {
            "schedule_start_time": "2026-12-02T00:00:00Z",
            "schedule_end_time": "2026-12-01T00:00:00Z",
        },
        "schedule_end_time",
    ),
    ({"schedule_start_time": "2026-12-02T00:00:00"}, "schedule_start_time"),
    ({"speech_settings": {"style": "shouty"}}, "speech_settings.style"),
    ({"speech_settings": {"responsiveness": "x"}}, "speech_settings.responsiveness"),
    ({"speech_settings": {"interruptions": "maybe"}}, "speech_settings.interruptions"),
    ({"speech_settings": {"emotions": "none"}}, "speech_settings.emotions"),
    ({"retry_policy": {"max_attempts": 0}}, "retry_policy"),
    ({"retry_policy": {"backoff": {"kind": "sometimes"}}}, "retry_policy"),
    (
        {
            "weekly_schedule": {
                "timezone": "Mars/Olympus",
                "hours": [{"start": "09:00", "end": "17:00"}],
            }
        },
        "weekly_schedule.timezone",
    ),
    (
        {"recipients": [{"phone_number": "+14155552671", "time_zone": "Nowhere/City"}]},
        "recipients.0.time_zone",
    ),
    ({"use_returning_greeting": "perhaps"}, "use_returning_greeting"),
    ({"surprise": 1}, "surprise"),
    ({"caller_id_number": "12"}, "caller_id_number"),
    ({"recipient_list_id": "00000000-0000-0000-0000-000000000000"}, "recipient_list_id"),
]


@pytest.mark.parametrize(("override", "field"), BAD_FIELDS)
def test_bad_field_is_422_naming_it(
    client: TestClient, override: dict[str, Any], field: str
) -> None:
    response = client.post("/campaign", json=campaign_body(**override))
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["detail"]]
    assert field in fields
    assert all(d["reason"] for d in response.json()["detail"])
    assert client.get("/campaign").json()["data"] == [], "a rejected request changes nothing"


def test_patch_bad_field_changes_nothing(client: TestClient) -> None:
    cid = client.post("/campaign", json=campaign_body()).json()["id"]
    response = client.patch(f"/campaign/{cid}", json={"name": "ok", "max_concurrency": 500})
    assert response.status_code == 422
    assert client.get(f"/campaign/{cid}").json()["name"] == "Renewals"
    end_first = client.patch(f"/campaign/{cid}", json={"schedule_end_time": "2026-12-01T00:00:00Z"})
    assert end_first.status_code == 200
    start_after = client.patch(
        f"/campaign/{cid}", json={"scheduleStartTime": "2026-12-02T00:00:00Z"}
    )
    assert start_after.status_code == 422
    assert start_after.json()["detail"][0]["field"] == "schedule_end_time"
    assert client.patch(f"/campaign/{cid}", json={"name": None}).status_code == 422


def test_oversize_body_is_422(client: TestClient) -> None:
    filler = "x" * (MAX_JSON_BYTES + 10)
    response = client.post(
        "/campaign", content=b'{"name": "' + filler.encode() + b'"}',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "body"


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/campaign", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope", "X-User-ID": "alice"},
        {"X-User-ID": "alice"},
    ],
)
def test_missing_or_wrong_credentials_are_401(
    app_client: TestClient, headers: dict[str, str]
) -> None:
    response = app_client.get("/campaign", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_key_of_another_user_is_401(client: TestClient) -> None:
    headers = dict(client.headers)
    headers["x-user-id"] = "mallory"
    assert client.get("/campaign", headers=headers).status_code == 401


def test_other_tenant_sees_404_for_every_resource(client: TestClient, bob: dict[str, str]) -> None:
    body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
    cid = client.post("/campaign", json=body).json()["id"]
    list_id = client.post(
        "/recipient_list", json={"name": "L", "recipients": [{"phone_number": "+14155552671"}]}
    ).json()["id"]
    client.post("/suppression", json={"phone_number": "+12125550123"})
    requests = [
        ("GET", f"/campaign/{cid}", None),
        ("PATCH", f"/campaign/{cid}", {"name": "mine"}),
        ("DELETE", f"/campaign/{cid}", None),
        ("POST", f"/campaign/{cid}/start", None),
        ("POST", f"/campaign/{cid}/stop", None),
        ("GET", f"/campaign/{cid}/recipients", None),
        ("POST", f"/campaign/{cid}/recipients", {"recipients": [{"phone_number": "+16175550199"}]}),
        ("GET", f"/campaign/{cid}/calls", None),
        ("GET", f"/recipient_list/{list_id}", None),
        ("GET", f"/recipient_list/{list_id}/rejected", None),
        ("DELETE", "/suppression/+12125550123", None),
    ]
    for method, url, payload in requests:
        theirs = client.request(method, url, json=payload, headers=bob)
        assert theirs.status_code == 404, (method, url, theirs.text)
        missing = client.request(
            method, url.replace(cid, "0" * 8).replace(list_id, "1" * 8), json=payload, headers=bob
        )
        assert missing.json()["error"] == theirs.json()["error"]
    assert client.get("/campaign", headers=bob).json()["data"] == []
    assert client.get("/suppression", headers=bob).json()["data"] == []
    # Bob's list id cannot be attached by Alice either.
    bob_list = client.post("/recipient_list", json={"name": "B", "recipients": []}, headers=bob)
    attach = client.post("/campaign", json=campaign_body(recipient_list_id=bob_list.json()["id"]))
    assert attach.status_code == 422
    assert client.get(f"/campaign/{cid}").json()["name"] == "Renewals"


def test_health_and_openapi(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    spec = app_client.get("/openapi.json").json()
    assert "/campaign/{campaign_id}/start" in spec["paths"]
    assert app_client.get("/docs").status_code == 200


def test_nul_characters_are_422_not_500(client: TestClient) -> None:
    body = client.post("/recipient_list", json={"name": "\x00"})
    assert body.status_code == 422
    nested = client.post("/campaign", json=campaign_body(campaign_context="a\x00b"))
    assert nested.status_code == 422
    assert client.get("/campaign/%00").status_code == 422
    assert client.get("/campaign", params={"cursor": "\x00"}).status_code == 422
    assert client.get("/campaign").json()["data"] == []


def test_a_write_that_lost_a_race_to_a_constraint_is_a_409() -> None:
    """Two requests writing the same row: the loser's IntegrityError is a conflict to retry,
    not a server fault."""
    import sqlalchemy.exc
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dialer.api import errors

    app = FastAPI()
    errors.install(app)

    @app.post("/race")
    def race() -> None:
        raise sqlalchemy.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    response = TestClient(app, raise_server_exceptions=False).post("/race")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
