"""Credentials, media types and sizes are checked by route before a body is read; bodies
over the limit are cut off as they stream in; form uploads hold little in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api import auth, errors, limits
from dialer.api.app import create_app
from dialer.errors import DialerError
from dialer.settings import Settings
from dialer.telephony.twilio.signature import sign
from tests.api.asgi import Answer, call
from tests.api.conftest import ManualClock, campaign_body, headers_for
from tests.api.lists import wait_imported

MIB = 1024 * 1024
BOUNDARY = "b0undary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
TOKEN = "webhook-secret"
PUBLIC = "https://dialer.example.com"
WEBHOOK = "/webhooks/twilio/1/status"


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


def _repeat(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


@pytest.fixture
def app(app_client: TestClient) -> FastAPI:
    built: FastAPI = app_client.app  # type: ignore[assignment]
    return built


@pytest.fixture
def alice(engine: Engine) -> dict[str, str]:
    return headers_for(engine, "alice")


@pytest.fixture
def queries(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the database runs while the test does."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


#: Requests to authenticated routes, each with a body the route would take or not.
GUARDED = [
    ("POST", "/campaign", MULTIPART),
    ("POST", "/campaign", "application/json"),
    ("POST", "/recipient_list", MULTIPART),
    ("PATCH", "/campaign/c1", "application/json"),
    ("POST", "/suppression", "text/plain"),
]


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, auth.MISSING),
        ({"Authorization": "Bearer dk_nope", "X-User-ID": "alice"}, auth.INVALID),
        ({"Authorization": "Basic YTpi", "X-User-ID": "alice"}, auth.MISSING),
        ({"Authorization": "Bearer dk_nope"}, auth.MISSING),
    ],
)
def test_no_valid_credentials_is_401_before_a_byte_of_the_body(
    app: FastAPI, credentials: dict[str, str], message: str
) -> None:
    for method, path, content_type in GUARDED:
        headers = {**credentials, "content-type": content_type, "content-length": str(400 * MIB)}
        answer = call(app, method, path, headers, _repeat(400 * MIB))
        assert answer.status == 401, (method, path)
        assert answer.pulled is None, "the body was read"
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json() == {"error": "unauthorized", "message": message, "detail": []}
        assert answer.headers["connection"] == "close", "the unread body is not drained"


def test_the_route_gets_the_tenant_the_guard_authenticated_without_a_second_lookup(
    app: FastAPI, alice: dict[str, str], queries: list[str]
) -> None:
    answer = call(app, "GET", "/campaign", alice)
    assert answer.status == 200
    assert len([q for q in queries if "api_keys" in q]) == 1


def test_public_routes_are_the_probes_the_documents_the_metrics_and_the_webhooks(
    app: FastAPI,
) -> None:
    public = {
        route.path for route in iter_route_contexts(app.routes) if not auth.requires_tenant(route)
    }
    assert public == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/webhooks/twilio/{attempt_id}/status",
        "/webhooks/twilio/{attempt_id}/amd",
        "/webhooks/twilio/{attempt_id}/stream",
        "/webhooks/twilio/{attempt_id}/twiml",
        "/webhooks/twilio/{attempt_id}/opt_out",
    }


def test_public_routes_need_no_credentials(app: FastAPI) -> None:
    assert call(app, "GET", "/healthz", {}).status == 200
    assert call(app, "GET", "/openapi.json", {}).status == 200


def test_unknown_paths_and_wrong_methods_read_no_body(app: FastAPI, alice: dict[str, str]) -> None:
    headers = {**alice, "content-type": MULTIPART, "transfer-encoding": "chunked"}
    for method, path, status in [
        ("POST", "/no/such/route", 404),
        ("PUT", "/campaign", 405),
        ("GET", WEBHOOK, 405),
    ]:
        answer = call(app, method, path, headers, _repeat(400 * MIB))
        assert answer.status == status
        assert answer.pulled is None
        assert answer.headers["connection"] == "close"


def test_a_media_type_the_route_does_not_take_is_415_before_reading(
    app: FastAPI, alice: dict[str, str]
) -> None:
    refused = [
        ("POST", "/campaign", MULTIPART),
        ("POST", "/campaign", "text/plain"),
        ("POST", "/campaign", "application/x-www-form-urlencoded"),
        ("POST", "/campaign", ""),
        ("PATCH", "/campaign/c1", MULTIPART),
        ("POST", "/campaign/c1/recipients", MULTIPART),
        ("POST", "/suppression", MULTIPART),
        ("POST", "/recipient_list", "text/csv"),
    ]
    for method, path, content_type in refused:
        headers = {**alice, "content-type": content_type, "content-length": "100"}
        answer = call(app, method, path, headers, [b"x" * 100])
        assert answer.status == 415, (method, path, content_type)
        assert answer.pulled is None
        body = answer.json()
        assert body["error"] == "unsupported_media_type"
        assert body["detail"][0]["field"] == "body"
        assert "application/json" in body["detail"][0]["reason"]


def test_json_with_a_charset_is_json(client: TestClient) -> None:
    import json

    response = client.post(
        "/campaign",
        content=json.dumps(campaign_body()),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


def test_a_declared_length_over_the_route_limit_is_refused_before_reading(
    app: FastAPI, alice: dict[str, str]
) -> None:
    for path, content_type, limit in [
        ("/campaign", "application/json", limits.MAX_JSON_BYTES),
        ("/recipient_list", "application/json", limits.MAX_JSON_BYTES),
        ("/recipient_list", MULTIPART, limits.MAX_UPLOAD_BYTES),
    ]:
        headers = {**alice, "content-type": content_type, "content-length": str(limit + 1)}
        answer = call(app, "POST", path, headers, _repeat(limit + 1))
        assert answer.status == 422
        assert answer.pulled is None
        reason = f"larger than {limit} bytes"
        assert answer.json()["detail"] == [{"field": "body", "reason": reason}]
        assert answer.headers["connection"] == "close"


def test_a_chunked_json_body_is_cut_off_at_the_limit(app: FastAPI, alice: dict[str, str]) -> None:
    headers = {**alice, "content-type": "application/json", "transfer-encoding": "chunked"}
    answer = call(app, "POST", "/campaign", headers, _repeat(100 * MIB, chunk=MIB))
    assert answer.status == 422
    assert answer.json()["detail"][0]["field"] == "body"
    assert answer.pulled is not None
    assert answer.pulled <= limits.MAX_JSON_BYTES + MIB
    assert answer.headers["connection"] == "close"


def test_only_the_list_upload_takes_multipart_and_its_json_form_still_works(
    client: TestClient,
) -> None:
    upload = client.post(
        "/recipient_list",
        data={"name": "Up"},
        files={"file": ("l.csv", b"phone_number\n+14155552671\n", "text/csv")},
    )
    assert upload.status_code == 202, upload.text
    assert wait_imported(client, upload.json()["id"])["accepted"] == 1
    rows = client.post(
        "/recipient_list", json={"name": "J", "recipients": [{"phone_number": "+14155552671"}]}
    )
    assert rows.status_code == 202, rows.text
    assert wait_imported(client, rows.json()["id"])["accepted"] == 1


def test_a_small_body_left_unread_keeps_the_connection(client: TestClient) -> None:
    body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
    cid = client.post("/campaign", json=body).json()["id"]
    started = client.post(f"/campaign/{cid}/start", json={})
    assert started.status_code == 200, started.text
    assert "connection" not in started.headers


# --- the upload's form: what stays in memory is small, whatever arrives -------------------


def _upload(app: FastAPI, headers: dict[str, str], body: Iterator[bytes]) -> Answer:
    headers = {**headers, "content-type": MULTIPART, "transfer-encoding": "chunked"}
    return call(app, "POST", "/recipient_list", headers, body)


def test_a_huge_text_field_is_refused_once_past_its_small_limit(
    app: FastAPI, alice: dict[str, str]
) -> None:
    def body() -> Iterator[bytes]:
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'.encode()
        yield from _repeat(50 * MIB)

    answer = _upload(app, alice, body())
    assert answer.status == 422
    assert answer.json()["detail"][0]["field"] == "body"
    assert answer.pulled is not None
    assert answer.pulled <= limits.UPLOAD_MAX_FIELD_BYTES + 128 * 1024


def test_too_many_parts_are_refused_as_they_arrive(app: FastAPI, alice: dict[str, str]) -> None:
    def body() -> Iterator[bytes]:
        for n in range(100_000):
            yield _part(f"f{n}", b"v")

    answer = _upload(app, alice, body())
    assert answer.status == 422
    assert "Too many fields" in answer.json()["detail"][0]["reason"]
    assert answer.pulled is not None
    assert answer.pulled < 10 * 1024


def test_a_second_file_is_refused(app: FastAPI, alice: dict[str, str]) -> None:
    def body() -> Iterator[bytes]:
        yield _part("file", b"phone_number\n", "a.csv")
        yield _part("other", b"phone_number\n", "b.csv")
        yield from _repeat(50 * MIB)

    answer = _upload(app, alice, body())
    assert answer.status == 422
    assert "Too many files" in answer.json()["detail"][0]["reason"]
    assert answer.pulled is not None
    assert answer.pulled < MIB


def test_oversized_part_headers_are_refused(app: FastAPI, alice: dict[str, str]) -> None:
    def body() -> Iterator[bytes]:
        yield f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=".encode()
        yield from _repeat(50 * MIB)

    answer = _upload(app, alice, body())
    assert answer.status == 422
    assert answer.pulled is not None
    assert answer.pulled < MIB


# --- webhooks ---------------------------------------------------------------------------


@pytest.fixture
def webhooks(engine: Engine, clock: ManualClock) -> Iterator[tuple[FastAPI, list[str]]]:
    """The app with Twilio's webhooks armed, and the names of what built a runtime."""
    built: list[str] = []

    def runtime() -> object:
        built.append("runtime")
        raise AssertionError("a webhook built the runtime")

    settings = Settings(
        database_url=str(engine.url), twilio_auth_token=TOKEN, public_base_url=PUBLIC
    )
    app = create_app(settings, engine=engine, clock=clock, runtime_factory=runtime)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False):
        yield app, built


def _signed(params: dict[str, str]) -> dict[str, str]:
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": sign(PUBLIC + WEBHOOK, params, TOKEN),
    }


def test_a_forged_callback_is_403_before_anything_is_read_or_changed(
    webhooks: tuple[FastAPI, list[str]], queries: list[str]
) -> None:
    app, built = webhooks
    body = b"CallSid=CA1&CallStatus=completed"
    headers = {**_signed({"CallSid": "CA1", "CallStatus": "busy"})}
    headers["content-length"] = str(len(body))
    answer = call(app, "POST", WEBHOOK, headers, [body])
    assert answer.status == 403
    assert queries == []
    assert built == []


def test_a_webhook_body_over_64_kib_is_refused(webhooks: tuple[FastAPI, list[str]]) -> None:
    app, built = webhooks
    declared = {**_signed({}), "content-length": str(limits.MAX_WEBHOOK_BYTES + 1)}
    answer = call(app, "POST", WEBHOOK, declared, _repeat(MIB))
    assert (answer.status, answer.pulled) == (422, None)
    chunked = {**_signed({}), "transfer-encoding": "chunked"}
    answer = call(app, "POST", WEBHOOK, chunked, (b"a=" + b"x" * 1024 for _ in range(10_000)))
    assert answer.status == 422
    assert answer.json()["detail"] == [
        {"field": "body", "reason": f"larger than {limits.MAX_WEBHOOK_BYTES} bytes"}
    ]
    assert answer.pulled is not None
    assert answer.pulled <= limits.MAX_WEBHOOK_BYTES + 1026
    assert built == []


def test_a_webhook_takes_only_a_urlencoded_form(webhooks: tuple[FastAPI, list[str]]) -> None:
    app, _ = webhooks
    for content_type in ["application/json", MULTIPART, "text/plain"]:
        headers = {**_signed({}), "content-type": content_type, "content-length": "2"}
        answer = call(app, "POST", WEBHOOK, headers, [b"{}"])
        assert (answer.status, answer.pulled) == (415, None)
        assert "application/x-www-form-urlencoded" in answer.json()["message"]


# --- 500s close the connection ----------------------------------------------------------


def test_every_500_says_the_connection_closes() -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/bug")
    def bug() -> None:
        raise RuntimeError("bug")

    @app.get("/dialer-bug")
    def dialer_bug() -> None:
        raise DialerError("unclassified")

    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/bug", "/dialer-bug"):
        response = client.get(path)
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert response.headers["connection"] == "close"
