"""The carrier's REST API speaks Twilio's dialect: form bodies, basic auth, error bodies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dialer.carrier import RunningCarrier
from dialer.telephony.twilio.callbacks import parse_timestamp
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver, only, wait_until

FORM = {
    "To": "+15551230001",
    "From": "+15550000001",
    "Url": "http://127.0.0.1:9/twiml",
}


@pytest.fixture
def running(start_carrier: StartCarrier) -> RunningCarrier:
    return start_carrier(profile=only("human", talk_s=100_000))


@pytest.fixture
def api(running: RunningCarrier) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{running.base_url}/2010-04-01/Accounts/{running.account_sid}",
        auth=(running.account_sid, running.auth_token),
        timeout=5,
    ) as client:
        yield client


def _error(response: httpx.Response, status: int, code: int) -> dict[str, object]:
    body = response.json()
    assert response.status_code == status
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    assert isinstance(body["message"], str)
    assert body["message"]
    return body  # type: ignore[no-any-return]


def test_create_answers_201_with_a_queued_call_resource(
    api: httpx.Client, running: RunningCarrier
) -> None:
    response = api.post("/Calls.json", data=FORM)
    assert response.status_code == 201
    call = response.json()
    assert call["sid"].startswith("CA")
    assert len(call["sid"]) == 34
    assert call["account_sid"] == running.account_sid
    assert (call["to"], call["from"]) == (FORM["To"], FORM["From"])
    assert call["status"] == "queued"
    assert call["direction"] == "outbound-api"
    assert call["api_version"] == "2010-04-01"
    assert call["uri"] == f"/2010-04-01/Accounts/{running.account_sid}/Calls/{call['sid']}.json"
    parse_timestamp(call["date_created"])  # RFC 2822, as Twilio writes it


def test_fetch_and_hang_up(api: httpx.Client) -> None:
    sid = api.post("/Calls.json", data=FORM).json()["sid"]
    wait_until(lambda: api.get(f"/Calls/{sid}.json").json()["status"] == "in-progress")
    hung_up = api.post(f"/Calls/{sid}.json", data={"Status": "completed"})
    assert hung_up.status_code == 200
    assert hung_up.json()["status"] == "completed"
    assert api.get(f"/Calls/{sid}.json").json()["status"] == "completed"
    # canceled only applies before an answer; on an ended call nothing changes
    assert (
        api.post(f"/Calls/{sid}.json", data={"Status": "canceled"}).json()["status"] == "completed"
    )


def test_canceled_does_not_end_an_answered_call(api: httpx.Client) -> None:
    sid = api.post("/Calls.json", data=FORM).json()["sid"]
    wait_until(lambda: api.get(f"/Calls/{sid}.json").json()["status"] == "in-progress")
    response = api.post(f"/Calls/{sid}.json", data={"Status": "canceled"})
    assert response.json()["status"] == "in-progress"


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": FORM["From"], "Url": FORM["Url"]}, 21201),
        ({**FORM, "To": "5551230001"}, 21211),
        ({"To": FORM["To"], "Url": FORM["Url"]}, 21213),
        ({**FORM, "From": "+0"}, 21212),
        ({"To": FORM["To"], "From": FORM["From"]}, 21205),
        ({**FORM, "Timeout": "0"}, 21208),
        ({**FORM, "Timeout": "soon"}, 21208),
        ({**FORM, "MachineDetection": "Enable", "MachineDetectionTimeout": "60"}, 21234),
        ({**FORM, "MachineDetection": "Maybe"}, 21234),
    ],
)
def test_invalid_creates_are_refused_like_twilio(
    api: httpx.Client, running: RunningCarrier, form: dict[str, str], code: int
) -> None:
    _error(api.post("/Calls.json", data=form), 400, code)
    assert running.stats()["total_calls"] == 0


def test_missing_or_wrong_credentials_are_401(running: RunningCarrier) -> None:
    url = f"{running.base_url}/2010-04-01/Accounts/{running.account_sid}/Calls.json"
    for auth in (None, (running.account_sid, "wrong"), ("ACother", running.auth_token)):
        response = httpx.post(url, data=FORM, auth=auth, timeout=5)
        _error(response, 401, 20003)
        assert response.headers["www-authenticate"].startswith("Basic")


def test_another_account_in_the_path_is_404(running: RunningCarrier) -> None:
    response = httpx.get(
        f"{running.base_url}/2010-04-01/Accounts/ACother/Calls.json",
        auth=(running.account_sid, running.auth_token),
        timeout=5,
    )
    _error(response, 404, 20404)


def test_unknown_call_is_404_and_bad_status_is_400(api: httpx.Client) -> None:
    _error(api.get("/Calls/CAnope.json"), 404, 20404)
    _error(api.post("/Calls/CAnope.json", data={"Status": "completed"}), 404, 20404)
    sid = api.post("/Calls.json", data=FORM).json()["sid"]
    _error(api.post(f"/Calls/{sid}.json", data={"Status": "paused"}), 400, 21220)


def test_list_filters_and_pages(api: httpx.Client, running: RunningCarrier) -> None:
    for to in ("+15557770001", "+15557770001", "+15557770002"):
        api.post("/Calls.json", data={**FORM, "To": to})
    wait_until(lambda: all(c["start_time"] for c in api.get("/Calls.json").json()["calls"]))
    assert len(api.get("/Calls.json").json()["calls"]) == 3
    mine = api.get("/Calls.json", params={"To": "+15557770001", "From": FORM["From"]}).json()
    assert [c["to"] for c in mine["calls"]] == ["+15557770001"] * 2
    assert api.get("/Calls.json", params={"From": "+15550000009"}).json()["calls"] == []

    first = api.get("/Calls.json", params={"PageSize": "2"}).json()
    assert (first["page"], first["page_size"], len(first["calls"])) == (0, 2, 2)
    # Page URIs are relative to the API's root, as Twilio's are.
    second = httpx.get(
        running.base_url + first["next_page_uri"],
        auth=(running.account_sid, running.auth_token),
        timeout=5,
    ).json()
    assert len(second["calls"]) == 1
    assert second["next_page_uri"] is None
    seen = {c["sid"] for c in first["calls"]} | {c["sid"] for c in second["calls"]}
    assert len(seen) == 3


def test_list_start_time_filters(api: httpx.Client) -> None:
    sid = api.post("/Calls.json", data=FORM).json()["sid"]
    wait_until(lambda: api.get(f"/Calls/{sid}.json").json()["start_time"] is not None)
    started = parse_timestamp(api.get(f"/Calls/{sid}.json").json()["start_time"])
    day = started.date().isoformat()

    def sids(**params: str) -> list[str]:
        return [c["sid"] for c in api.get("/Calls.json", params=params).json()["calls"]]

    assert sids(**{"StartTime>": day}) == [sid]
    assert sids(**{"StartTime": day}) == [sid]
    assert sids(**{"StartTime>": started.strftime("%Y-%m-%dT%H:%M:%SZ")}) == [sid]
    assert sids(**{"StartTime<": "2000-01-01"}) == []
    _error(api.get("/Calls.json", params={"StartTime>": "last week"}), 400, 20001)


def test_without_status_callback_events_only_the_end_is_reported(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("busy"))
    request = receiver.request()
    answer, status, _ = receiver.webhooks.for_attempt(request.attempt_id, request.campaign_id)
    form = {**FORM, "Url": answer, "StatusCallback": status}
    response = httpx.post(
        f"{running.base_url}/2010-04-01/Accounts/{running.account_sid}/Calls.json",
        data=form,
        auth=(running.account_sid, running.auth_token),
        timeout=5,
    )
    sid = response.json()["sid"]
    wait_until(lambda: running.stats()["ended_by_status"].get("busy") == 1)
    wait_until(lambda: len(receiver.received(request.attempt_id)) == 1)
    (only_one,) = receiver.received(request.attempt_id)
    assert only_one.params["CallStatus"] == "busy"
    assert only_one.params["CallSid"] == sid
    assert only_one.params["SequenceNumber"] == "0"
