"""Request guards before any route runs: body size limits, enforced while the body streams in
(not after buffering it), and no NUL characters in the URL."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Largest JSON body accepted, in bytes (10 MiB: 10,000 inline recipients fit easily).
MAX_JSON_BYTES = 10 * 1024 * 1024
#: Largest upload (a recipient list CSV), in bytes.
MAX_UPLOAD_BYTES = 512 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Answers 422 naming ``body`` when a request body exceeds its limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            await _reject(send, 0, field="url", reason="contains a NUL character")
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = MAX_UPLOAD_BYTES if content_type.startswith("multipart/") else MAX_JSON_BYTES
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return
        seen = 0
        exceeded = False
        answered = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn the aborted read into an error answer of its own;
            # replace it with ours.
            nonlocal answered
            if exceeded:
                if not answered:
                    answered = True
                    await _reject(send, limit)
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except BodyTooLarge:
            if not answered:
                await _reject(send, limit)


def _has_nul(scope: Scope) -> bool:
    """A NUL in the path or query (raw or %-encoded) can never name anything we store."""
    raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
    return b"\x00" in raw or b"%00" in raw or "\x00" in scope.get("path", "")


async def _reject(send: Send, limit: int, *, field: str = "body", reason: str = "") -> None:
    reason = reason or f"larger than {limit} bytes"
    body = json.dumps(
        {
            "error": "validation_error",
            "message": f"{field}: {reason}",
            "detail": [{"field": field, "reason": reason}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
