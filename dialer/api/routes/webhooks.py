"""Provider webhooks: status and AMD callbacks, and the TwiML fetched when a call is answered.

Each request must carry a valid ``X-Twilio-Signature`` computed over the *public* URL (the
configured ``DIALER_PUBLIC_BASE_URL`` plus path and query: behind a proxy the URL this process
sees differs from the one the provider signed); otherwise 403 and nothing changes. The attempt
is identified by our own id in the path. Ingestion is idempotent and order-tolerant (see
:mod:`dialer.services.attempts`), and commits before the answer, so a provider retry after a
lost answer is a harmless repeat.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from dialer.api import pagination
from dialer.api.auth import Ctx
from dialer.api.context import ApiContext
from dialer.services import twiml as twiml_service
from dialer.telephony.events import EventKind
from dialer.telephony.signature import is_valid

router = APIRouter(prefix="/webhooks/twilio", tags=["provider webhooks"], include_in_schema=True)

AttemptId = Annotated[int, Path(ge=1, le=pagination.MAX_ID)]


async def _verified(request: Request, ctx: ApiContext) -> dict[str, str] | None:
    """The form params when the signature is valid for the public URL, else None."""
    token = ctx.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature")
    if token is None or not signature:
        return None
    form = await request.form()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    url = str(ctx.settings.public_base_url).rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not is_valid(url, params, signature, token.get_secret_value()):
        return None
    return params


def _forbidden() -> JSONResponse:
    return JSONResponse(
        status_code=403,
        content={"error": "forbidden", "message": "invalid X-Twilio-Signature", "detail": []},
    )


async def _event(request: Request, ctx: ApiContext, attempt_id: int, kind: EventKind) -> Response:
    params = await _verified(request, ctx)
    if params is None:
        return _forbidden()
    runtime = ctx.runtime()
    await run_in_threadpool(runtime.dialer.deliver, str(attempt_id), kind, params)
    return Response(status_code=204)


@router.post("/{attempt_id}/status", status_code=204, responses={403: {}})
async def status_callback(attempt_id: AttemptId, request: Request, ctx: Ctx) -> Response:
    """Call progress: initiated, ringing, answered, completed/busy/no-answer/failed/canceled."""
    return await _event(request, ctx, attempt_id, "status")


@router.post("/{attempt_id}/amd", status_code=204, responses={403: {}})
async def amd_callback(attempt_id: AttemptId, request: Request, ctx: Ctx) -> Response:
    """The answering-machine verdict (``AnsweredBy``)."""
    return await _event(request, ctx, attempt_id, "amd")


@router.post("/{attempt_id}/twiml", responses={403: {}})
async def twiml(attempt_id: AttemptId, request: Request, ctx: Ctx) -> Response:
    """What the answered call plays: the assistant's media stream with the call's context
    as ``<Parameter>``s, or, for an answering machine, the voicemail message and hang-up."""
    params = await _verified(request, ctx)
    if params is None:
        return _forbidden()
    body = await run_in_threadpool(_twiml, ctx, attempt_id, params.get("AnsweredBy"))
    return Response(content=body, media_type="application/xml")


def _twiml(ctx: ApiContext, attempt_id: int, answered_by: str | None) -> str:
    with ctx.read() as session:
        call = twiml_service.context(session, attempt_id)
    if call is None:
        from twilio.twiml.voice_response import VoiceResponse

        response = VoiceResponse()
        response.hangup()
        return str(response)
    return twiml_service.for_answer(call, answered_by, ctx.settings.assistant_stream_url)
