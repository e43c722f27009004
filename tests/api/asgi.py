"""One request straight through an ASGI app, seeing exactly how much of its body the app
pulled: for the rules that must hold before a body is read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    #: Body bytes the app took from the request (None when it never asked for any).
    pulled: int | None

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: ASGIApp,
    method: str,
    path: str,
    headers: Mapping[str, str],
    chunks: Iterable[bytes] = (),
) -> Answer:
    """Send ``method path`` with ``headers`` and a body of ``chunks`` (one ``http.request``
    message each; a declared ``content-length`` is the caller's to set)."""
    pending = iter(chunks)
    pulled: int | None = None
    finished = False
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled, finished
        if finished:
            return {"type": "http.disconnect"}
        chunk = next(pending, None)
        pulled = (pulled or 0) + len(chunk or b"")
        if chunk is None:
            finished = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "state": {},
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return Answer(start["status"], answer_headers, body, pulled)
