"""What each route accepts as a body: its media types and their sizes, in one table.

Every route takes JSON of at most :data:`MAX_JSON_BYTES` unless the table says otherwise:
``POST /recipient_list`` also takes a ``multipart/form-data`` upload, and the providers'
webhooks (under ``/webhooks/``) take only a small ``application/x-www-form-urlencoded`` form.
:class:`~dialer.api.guard.RequestGuard` enforces the rule of the route a request matches
before its handler runs: a media type the rule does not name is a 415, a declared
``Content-Length`` over the limit a 422 before a byte is read, and a chunked body is cut off
at the limit while it streams in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request

from dialer.telephony.providers import webhooks_path

#: Largest JSON body accepted, in bytes (10 MiB: 10,000 inline recipients fit easily).
MAX_JSON_BYTES = 10 * 1024 * 1024
#: Largest upload (a recipient list CSV), in bytes. The file goes to a temporary file on
#: disk past 1 MiB (Starlette's spooling), so this bounds disk, not memory.
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
#: Largest provider callback, in bytes (a Twilio status callback is about 2 KiB).
MAX_WEBHOOK_BYTES = 64 * 1024

JSON = "application/json"
MULTIPART = "multipart/form-data"
FORM = "application/x-www-form-urlencoded"

#: What an upload's form may hold besides its one file: a few text fields (the list's
#: ``name``), each kept in memory, so each is small. python-multipart itself allows a part
#: 8 headers of 4 KiB at most.
UPLOAD_MAX_FILES = 1
UPLOAD_MAX_FIELDS = 5
UPLOAD_MAX_FIELD_BYTES = 16 * 1024


@dataclass(frozen=True)
class BodyRule:
    """The media types a route's body may have, each with its largest size in bytes."""

    max_bytes: Mapping[str, int]

    def limit(self, media_type: str) -> int | None:
        """The size limit for a body of ``media_type``; None when the route refuses it."""
        return self.max_bytes.get(media_type)

    def accepted(self) -> str:
        return " or ".join(self.max_bytes)


JSON_BODY = BodyRule({JSON: MAX_JSON_BYTES})
UPLOAD_BODY = BodyRule({JSON: MAX_JSON_BYTES, MULTIPART: MAX_UPLOAD_BYTES})
WEBHOOK_BODY = BodyRule({FORM: MAX_WEBHOOK_BYTES})
#: For a request that matches no route: its 404 or 405 never reads the body.
NO_BODY = BodyRule({})

#: The routes whose body is not JSON's, by method and path template.
RULES: Mapping[tuple[str, str], BodyRule] = {("POST", "/recipient_list"): UPLOAD_BODY}
#: Every provider's webhooks are mounted under this prefix.
WEBHOOKS_PREFIX = webhooks_path("")


def rule_for(methods: frozenset[str], path: str) -> BodyRule:
    """The body rule of the route answering ``methods`` at ``path`` (its template)."""
    if path.startswith(WEBHOOKS_PREFIX):
        return WEBHOOK_BODY
    for method in methods:
        if (method, path) in RULES:
            return RULES[(method, path)]
    return JSON_BODY


def media_type(content_type: str) -> str:
    """``multipart/form-data; boundary=x`` -> ``multipart/form-data``."""
    return content_type.partition(";")[0].strip().lower()


async def read_upload_form(request: Request) -> FormData:
    """The upload's form, parsed as it streams in: the file spooled to disk past 1 MiB, the
    text fields in memory and small; too many parts, or a field too large, is refused
    (Starlette raises an ``HTTPException`` 400) before the rest is read."""
    return await request.form(
        max_files=UPLOAD_MAX_FILES,
        max_fields=UPLOAD_MAX_FIELDS,
        max_part_size=UPLOAD_MAX_FIELD_BYTES,
    )
