from __future__ import annotations

import base64
import hashlib
import hmac

from dialer.telephony.twilio.signature import is_valid, sign

TOKEN = "secret-token"
URL = "https://dialer.example.com/webhooks/status/a1?campaign=c1"
PARAMS = {"CallSid": "CA1", "CallStatus": "ringing", "SequenceNumber": "1"}


def test_a_signature_validates_for_the_same_url_and_params() -> None:
    assert is_valid(URL, PARAMS, sign(URL, PARAMS, TOKEN), TOKEN)


def test_is_hmac_sha1_of_the_url_and_sorted_params() -> None:
    # Twilio's scheme: the URL, then each param name and value in name order, keyed by the
    # auth token, base64. Computed here by hand, independently of the SDK.
    payload = URL + "".join(name + PARAMS[name] for name in sorted(PARAMS))
    digest = hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    assert sign(URL, PARAMS, TOKEN) == base64.b64encode(digest).decode()


def test_tampered_params_are_rejected() -> None:
    signature = sign(URL, PARAMS, TOKEN)
    assert not is_valid(URL, {**PARAMS, "CallStatus": "completed"}, signature, TOKEN)
    assert not is_valid(URL, {**PARAMS, "AnsweredBy": "human"}, signature, TOKEN)


def test_tampered_url_is_rejected() -> None:
    signature = sign(URL, PARAMS, TOKEN)
    assert not is_valid(URL.replace("c1", "c2"), PARAMS, signature, TOKEN)
    assert not is_valid(URL.replace("dialer.", "evil."), PARAMS, signature, TOKEN)


def test_another_token_is_rejected() -> None:
    assert not is_valid(URL, PARAMS, sign(URL, PARAMS, TOKEN), "other-token")
