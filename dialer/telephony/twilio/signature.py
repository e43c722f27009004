"""Twilio webhook signatures (``X-Twilio-Signature``): base64 HMAC-SHA1 of URL plus params.

``url`` must be the full public URL the provider requested, query string included. Behind a
proxy the URL the app sees differs: build it from the configured public base URL.
"""

from __future__ import annotations

from collections.abc import Mapping

SIGNATURE_HEADER = "X-Twilio-Signature"


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The signature Twilio would send with a POST of ``params`` to ``url``."""
    from twilio.request_validator import RequestValidator

    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


def is_valid(url: str, params: Mapping[str, str], signature: str, auth_token: str) -> bool:
    """True if ``signature`` is the one ``auth_token`` gives ``url`` and ``params``.

    Compares in constant time; with and without the default port, as Twilio's validator does.
    """
    from twilio.request_validator import RequestValidator

    valid: bool = RequestValidator(auth_token).validate(url, dict(params), signature)
    return valid
