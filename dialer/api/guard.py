"""The ASGI layer every request passes before any route runs, and before its body is read.

In order: no NUL in the URL (422); the route the request matches; on an authenticated route,
the credentials (401, the database work in a thread); the body's media type against the
route's rule (415) and its declared size (422). Only then does the route run, reading the
body through a counter that cuts it off at the limit (422). A request matching no route goes
on to its 404 or 405, which read nothing.

An answer sent while more than :data:`DRAIN_MAX_BYTES` of the body is still unread (or an
unknown amount: chunked) carries ``Connection: close``: otherwise the server would read and
discard the whole rest of it to keep the connection open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.api import auth, limits
from dialer.api.errors import error_response, validation_failed
from dialer.observability import context, metrics

#: Unread body an answer may leave for the server to discard on a kept-alive connection.
DRAIN_MAX_BYTES = 64 * 1024

Authenticate = Callable[[str, str], "auth.Principal | None"]


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class _RouteRule:
    #: The route's own ``matches`` (resolved once: through ``RouteContext`` it costs more).
    matches: Callable[[Scope], tuple[Match, Scope]]
    authenticated: bool
    body: limits.BodyRule


class RequestGuard:
    """Authentication and body limits by route, ahead of the app (see the module's doc)."""

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute], authenticate: Authenticate
    ) -> None:
        self.app = app
        self._routes = routes
        self._authenticate = authenticate
        self._rules: list[_RouteRule] | None = None

    def rules(self) -> list[_RouteRule]:
        """Each route with its rule, worked out on the first request (all routes are in by
        then: the app is built before it serves)."""
        if self._rules is None:
            self._rules = [
                _RouteRule(route.matches, auth.requires_tenant(route), _body_rule(route))
                for route in iter_route_contexts(self._routes)
            ]
        return self._rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        body = _Body(receive, headers)
        send = body.closing(send)
        if _has_nul(scope):
            reason = "contains a NUL character"
            await validation_failed([{"field": "url", "reason": reason}])(scope, receive, send)
            return
        rule = self._match(scope)
        if rule is None:
            body.limit = 0
            await body.run(self.app, scope, send)
            return
        if rule.authenticated:
            presented = auth.credentials_of(headers.get("authorization"), headers.get("x-user-id"))
            principal = None
            if presented is not None:
                principal = await run_in_threadpool(self._authenticate, *presented)
            if principal is None:
                reason = auth.MISSING if presented is None else auth.INVALID
                await _unauthorized(reason)(scope, receive, send)
                return
            tenant = principal.tenant_id
            scope[auth.TENANT_SCOPE_KEY] = tenant
            scope[auth.PRINCIPAL_SCOPE_KEY] = principal
            with context.bound(tenant_id=tenant):  # on the request's log lines
                await self._admit(rule, body, headers, scope, receive, send)
            return
        await self._admit(rule, body, headers, scope, receive, send)

    async def _admit(
        self,
        rule: _RouteRule,
        body: _Body,
        headers: Headers,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """The body's checks, then the route."""
        if body.present:
            limit = rule.body.limit(limits.media_type(headers.get("content-type", "")))
            if limit is None:
                _callback_refused(rule, metrics.MALFORMED)
                await _unsupported(rule.body)(scope, receive, send)
                return
            body.limit = limit
            if body.declared is not None and body.declared > limit:
                _callback_refused(rule, metrics.TOO_LARGE)
                await _too_large(limit)(scope, receive, send)
                return
        await body.run(self.app, scope, send)
        if body.exceeded:
            _callback_refused(rule, metrics.TOO_LARGE)

    def _match(self, scope: Scope) -> _RouteRule | None:
        for rule in self.rules():
            match, _ = rule.matches(scope)
            if match is Match.FULL:
                return rule
        return None


def _callback_refused(rule: _RouteRule, reason: str) -> None:
    """Count a provider callback the guard refused (on a webhook route)."""
    if rule.body is limits.WEBHOOK_BODY:
        metrics.callback_rejected(reason)


def _body_rule(route: RouteContext) -> limits.BodyRule:
    return limits.rule_for(frozenset(route.methods or ()), route.path or "")


class _Body:
    """A request's body as the app reads it: counted, cut off past ``limit`` bytes."""

    def __init__(self, receive: Receive, headers: Headers) -> None:
        self._receive = receive
        length = headers.get("content-length")
        self.declared = int(length) if length is not None and length.isdigit() else None
        chunked = "transfer-encoding" in headers
        self.present = chunked or bool(self.declared)
        self.complete = not self.present
        self.limit = limits.MAX_JSON_BYTES
        self.seen = 0
        self.exceeded = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
            if self.seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge
        return message

    def closing(self, send: Send) -> Send:
        """``send``, adding ``Connection: close`` to an answer that leaves much unread."""

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start" and self._leaves_much_unread():
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        return guarded

    def _leaves_much_unread(self) -> bool:
        if self.complete:
            return False
        return self.declared is None or self.declared - self.seen > DRAIN_MAX_BYTES

    async def run(self, app: ASGIApp, scope: Scope, send: Send) -> None:
        """Run ``app`` on this body; past the limit, answer 422 in place of whatever the app
        made of the aborted read (FastAPI turns it into a 400 of its own)."""
        answered = False

        async def guarded(message: Message) -> None:
            nonlocal answered
            if self.exceeded:
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await app(scope, self.receive, guarded)
        except Exception:
            # BodyTooLarge itself, or whatever a handler turned it into.
            if not self.exceeded:
                raise
        if self.exceeded and not answered:
            await _too_large(self.limit)(scope, self.receive, send)


_CLOSE = (b"connection", b"close")


def _has_nul(scope: Scope) -> bool:
    """A NUL in the path or query (raw or %-encoded) can never name anything we store."""
    raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
    return b"\x00" in raw or b"%00" in raw or "\x00" in scope.get("path", "")


def _unauthorized(message: str) -> JSONResponse:
    response = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _unsupported(rule: limits.BodyRule) -> JSONResponse:
    reason = f"Content-Type must be {rule.accepted()}" if rule.max_bytes else "no body expected"
    return error_response(
        415, "unsupported_media_type", f"body: {reason}", [{"field": "body", "reason": reason}]
    )


def _too_large(limit: int) -> JSONResponse:
    return validation_failed([{"field": "body", "reason": f"larger than {limit} bytes"}])
