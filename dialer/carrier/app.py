"""The carrier's HTTP face: the subset of Twilio's REST API the Twilio adapter uses.

* ``POST /2010-04-01/Accounts/{sid}/Calls.json``: create (form encoded, basic auth);
* ``GET  /2010-04-01/Accounts/{sid}/Calls.json``: list, by ``To``, ``From``, ``Status``,
  ``StartTime``/``StartTime>``/``StartTime<``, paged with ``PageSize`` and ``Page``;
* ``GET  /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json``: fetch;
* ``POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json`` with ``Status``: hang up;
* ``GET  /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json`` and ``OutgoingCallerIds.json``:
  the account's numbers and verified caller IDs, by ``PhoneNumber`` (with no ``numbers``
  configured, the account owns any valid number it is asked about);
* ``GET  /__carrier__/stats`` and ``GET /__carrier__/calls``: the carrier's own view.

Injected 429 and 5xx refuse a REST request before it does anything; a slow response is
delayed after the request took effect, so a client that times out leaves a call behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialer.carrier.carrier import Carrier, CarrierCall
from dialer.carrier.create import parse_create
from dialer.carrier.resources import (
    API_PREFIX,
    TwilioApiError,
    call_resource,
    calls_uri,
    number_resource,
)
from dialer.telephony.simulator.plan import caller_id_status

Handler = Callable[[Request], Awaitable[tuple[int, dict[str, Any]]]]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_T = TypeVar("_T")


def create_app(carrier: Carrier) -> Starlette:
    """An ASGI app serving ``carrier``; its lifespan starts and stops the carrier."""
    api = _CallsApi(carrier)
    account = f"{API_PREFIX}/Accounts/{{account_sid}}"
    list_or_create = api.rest(api.list_calls), api.rest(api.create_call)
    fetch_or_update = api.rest(api.fetch_call), api.rest(api.update_call)

    async def calls_endpoint(request: Request) -> Response:
        return await list_or_create[request.method == "POST"](request)

    async def call_endpoint(request: Request) -> Response:
        return await fetch_or_update[request.method == "POST"](request)

    return Starlette(
        routes=[
            Route(f"{account}/Calls.json", calls_endpoint, methods=["GET", "POST"]),
            Route(f"{account}/Calls/{{call_sid}}.json", call_endpoint, methods=["GET", "POST"]),
            Route(
                f"{account}/IncomingPhoneNumbers.json",
                api.rest(api.list_incoming),
                methods=["GET"],
            ),
            Route(
                f"{account}/OutgoingCallerIds.json", api.rest(api.list_caller_ids), methods=["GET"]
            ),
            Route("/__carrier__/stats", api.stats, methods=["GET"]),
            Route("/__carrier__/calls", api.calls_view, methods=["GET"]),
        ],
        lifespan=api.lifespan,
    )


class _CallsApi:
    """The handlers of the carrier's routes."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def rest(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A REST endpoint: authenticated, faults injected, answered as Twilio does."""
        carrier = self.carrier

        async def endpoint(request: Request) -> Response:
            try:
                carrier.authenticate(
                    request.headers.get("authorization"),
                    request.path_params["account_sid"],
                    request.url.path,
                )
                fault = carrier.request_fault()
                if fault is not None:
                    raise fault
                status, body = await handler(request)
            except TwilioApiError as exc:
                headers = (
                    {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else None
                )
                return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
            delay_s = carrier.response_delay_s()
            if delay_s:
                await asyncio.sleep(delay_s)
            return JSONResponse(body, status_code=status)

        return endpoint

    async def create_call(self, request: Request) -> tuple[int, dict[str, Any]]:
        form = await request.form()
        names = list(dict.fromkeys(form.keys()))

        def getlist(name: str) -> list[str]:
            return [str(value) for value in form.getlist(name)]

        call = self.carrier.create(
            parse_create(getlist, names, self.carrier.config.calling_numbers())
        )
        return 201, call_resource(call.sim, call.updated_at)

    async def list_calls(self, request: Request) -> tuple[int, dict[str, Any]]:
        calls = self.carrier.matching(dict(request.query_params))
        base = calls_uri(request.path_params["account_sid"])
        return 200, _page(request, "calls", base, calls, _call_record)

    async def list_incoming(self, request: Request) -> tuple[int, dict[str, Any]]:
        """The account's numbers: the configured ones, or (none configured) whichever valid
        number is asked about."""
        config = self.carrier.config
        asked = request.query_params.get("PhoneNumber")
        if config.numbers is None:
            numbers = [asked] if asked and caller_id_status(asked, None).may_call_from else []
        else:
            numbers = sorted(n for n in config.numbers if not asked or asked in n)
        return self._numbers(request, "IncomingPhoneNumbers", numbers)

    async def list_caller_ids(self, request: Request) -> tuple[int, dict[str, Any]]:
        asked = request.query_params.get("PhoneNumber")
        numbers = sorted(n for n in self.carrier.config.caller_ids if not asked or asked in n)
        return self._numbers(request, "OutgoingCallerIds", numbers)

    def _numbers(
        self, request: Request, kind: str, numbers: list[str]
    ) -> tuple[int, dict[str, Any]]:
        sid = request.path_params["account_sid"]
        key = "incoming_phone_numbers" if kind == "IncomingPhoneNumbers" else "outgoing_caller_ids"
        base = f"{API_PREFIX}/Accounts/{sid}/{kind}.json"
        return 200, _page(
            request, key, base, numbers, lambda number: number_resource(sid, kind, number)
        )

    async def fetch_call(self, request: Request) -> tuple[int, dict[str, Any]]:
        call = self._call(request)
        return 200, call_resource(call.sim, call.updated_at)

    async def update_call(self, request: Request) -> tuple[int, dict[str, Any]]:
        call = self._call(request)
        status = str((await request.form()).get("Status") or "")
        if status not in ("completed", "canceled"):
            raise TwilioApiError(400, 21220, f"Invalid Status for modification: {status!r}")
        self.carrier.hang_up(call, status)
        return 200, call_resource(call.sim, call.updated_at)

    def _call(self, request: Request) -> CarrierCall:
        call = self.carrier.get(request.path_params["call_sid"])
        if call is None:
            raise TwilioApiError(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        return call

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.carrier.stats.snapshot())

    async def calls_view(self, request: Request) -> Response:
        """Every call with its inputs and when it was live (created, ended: ``stats`` counts a
        call live between the two), so a test can rebuild concurrency at any moment."""
        return JSONResponse(
            [
                {
                    "sid": call.sim.sid,
                    "status": call.sim.status.value,
                    "to": call.sim.to,
                    "from": call.sim.from_,
                    "campaign": call.request.campaign,
                    "planned_outcome": call.sim.plan.outcome.value,
                    "answered_by": call.sim.answered_by,
                    "params": call.request.params,
                    "created_at": call.sim.created_at.isoformat(),
                    "ended_at": None
                    if call.sim.ended_at is None
                    else call.sim.ended_at.isoformat(),
                }
                for call in self.carrier.calls()
            ]
        )

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.carrier.start()
        try:
            yield
        finally:
            await self.carrier.stop()


def _call_record(call: CarrierCall) -> dict[str, Any]:
    return call_resource(call.sim, call.updated_at)


def _page(
    request: Request,
    key: str,
    base: str,
    records: Sequence[_T],
    render: Callable[[_T], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a list resource, as Twilio pages them (``PageSize``, ``Page``); only the
    page's records are rendered."""
    query = request.query_params
    page_size = min(max(_query_int(query.get("PageSize"), DEFAULT_PAGE_SIZE), 1), MAX_PAGE_SIZE)
    page = _query_int(query.get("Page"), 0)
    chosen = records[page * page_size : (page + 1) * page_size]

    def page_uri(number: int) -> str:
        kept = [(k, v) for k, v in query.multi_items() if k not in ("Page", "PageToken")]
        return f"{base}?{urlencode([*kept, ('Page', str(number))])}"

    more = (page + 1) * page_size < len(records)
    return {
        key: [render(record) for record in chosen],
        "start": page * page_size,
        "end": page * page_size + max(len(chosen) - 1, 0),
        "page": page,
        "page_size": page_size,
        "uri": page_uri(page),
        "first_page_uri": page_uri(0),
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "next_page_uri": page_uri(page + 1) if more else None,
    }


def _query_int(text: str | None, default: int) -> int:
    if not text:
        return default
    try:
        return max(int(text), 0)
    except ValueError:
        raise TwilioApiError(400, 20001, f"Invalid integer: {text}") from None
