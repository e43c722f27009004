"""Twilio's webhooks: status, AMD and media stream callbacks, the TwiML fetched when a call
is answered, and the key pressed during its opening message (opt-out).

Each request must carry a valid ``X-Twilio-Signature`` computed over the *public* URL (the
configured ``DIALER_PUBLIC_BASE_URL`` plus path and query: behind a proxy the URL this process
sees differs from the one Twilio signed); otherwise 403 and nothing changes. The attempt is
identified by our own id in the path. Ingestion is idempotent and order-tolerant, and commits
before the answer, so a Twilio retry after a lost answer is a harmless repeat.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from dialer.errors import ValidationError
from dialer.observability import context, metrics
from dialer.settings import Settings
from dialer.telephony.events import EventKind
from dialer.telephony.providers import Inbound
from dialer.telephony.twilio import twiml
from dialer.telephony.twilio.callbacks import parse_event
from dialer.telephony.twilio.signature import is_valid
from dialer.telephony.twilio.urls import WebhookUrls

#: Attempt ids are 64-bit signed integers.
MAX_ATTEMPT_ID = 2**63 - 1
AttemptId = Annotated[int, Path(ge=1, le=MAX_ATTEMPT_ID)]


def router(settings: Settings, inbound: Inbound) -> APIRouter:
    """Twilio's webhook routes (mounted under ``/webhooks/twilio``)."""
    routes = APIRouter(tags=["provider webhooks"])
    verify = _Verifier(settings)
    urls = WebhookUrls(str(settings.public_base_url))

    async def event(request: Request, attempt_id: int, kind: EventKind) -> Response:
        with context.bound(attempt_id=attempt_id), metrics.callback(kind):
            params = await verify(request)
            if params is None:
                metrics.callback_rejected(metrics.BAD_SIGNATURE)
                return _forbidden()
            try:
                parsed = parse_event(kind, params)
            except ValidationError:
                metrics.callback_rejected(metrics.MALFORMED)
                raise
            context.add(call_sid=parsed.provider_call_id)
            await run_in_threadpool(inbound.ingest, attempt_id, parsed)
        return Response(status_code=204)

    @routes.post("/{attempt_id}/status", status_code=204, responses={403: {}})
    async def status_callback(attempt_id: AttemptId, request: Request) -> Response:
        """Call progress: initiated, ringing, answered, completed/busy/no-answer/failed/canceled."""
        return await event(request, attempt_id, "status")

    @routes.post("/{attempt_id}/amd", status_code=204, responses={403: {}})
    async def amd_callback(attempt_id: AttemptId, request: Request) -> Response:
        """The answering-machine verdict (``AnsweredBy``)."""
        return await event(request, attempt_id, "amd")

    @routes.post("/{attempt_id}/stream", status_code=204, responses={403: {}})
    async def stream_callback(attempt_id: AttemptId, request: Request) -> Response:
        """The assistant's media stream: ``stream-started``, ``stream-stopped``,
        ``stream-error`` (when it started decides whether the call was abandoned)."""
        return await event(request, attempt_id, "stream")

    @routes.post("/{attempt_id}/twiml", responses={403: {}})
    async def answer(attempt_id: AttemptId, request: Request) -> Response:
        """What the answered call plays: the assistant's media stream with the call's context
        as ``<Parameter>``s, or, for an answering machine, the voicemail message and hang-up."""
        params = await verify(request)
        if params is None:
            return _forbidden()
        context = await run_in_threadpool(inbound.call_context, attempt_id)
        if context is None:
            body = twiml.hang_up()
        else:
            key = None
            if settings.opt_out_digit:
                url = urls.opt_out(attempt_id, context.campaign_id)
                key = twiml.OptOutKey(settings.opt_out_digit, url)
            body = twiml.for_answer(
                context,
                params.get("AnsweredBy"),
                settings.assistant_stream_url,
                key,
                urls.stream_callback(attempt_id, context.campaign_id),
            )
        return _xml(body)

    @routes.post("/{attempt_id}/opt_out", responses={403: {}})
    async def key_pressed(attempt_id: AttemptId, request: Request) -> Response:
        """A key pressed while the opening message played (``Digits``): the opt-out key
        (``DIALER_OPT_OUT_DIGIT``) puts the number on the tenant's do-not-call list (source
        ``dtmf:<attempt id>``), says so and hangs up; another key goes on to the assistant."""
        params = await verify(request)
        if params is None:
            return _forbidden()
        context = await run_in_threadpool(inbound.call_context, attempt_id)
        if context is None:
            return _xml(twiml.hang_up())
        digit = settings.opt_out_digit
        opted_out = bool(digit) and params.get("Digits", "").strip() == digit
        if opted_out:
            await run_in_threadpool(inbound.opt_out, attempt_id, digit)
        callback = urls.stream_callback(attempt_id, context.campaign_id)
        return _xml(twiml.after_key(context, opted_out, settings.assistant_stream_url, callback))

    return routes


def _xml(body: str) -> Response:
    return Response(content=body, media_type="application/xml")


class _Verifier:
    """The form params of a request when its signature is valid for the public URL, else None."""

    def __init__(self, settings: Settings) -> None:
        token = settings.twilio_auth_token
        self._token = None if token is None else token.get_secret_value()
        self._base_url = str(settings.public_base_url).rstrip("/")

    async def __call__(self, request: Request) -> dict[str, str] | None:
        signature = request.headers.get("x-twilio-signature")
        if self._token is None or not signature:
            return None
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        url = self._base_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        if not is_valid(url, params, signature, self._token):
            return None
        return params


def _forbidden() -> JSONResponse:
    return JSONResponse(
        status_code=403,
        content={"error": "forbidden", "message": "invalid X-Twilio-Signature", "detail": []},
    )
