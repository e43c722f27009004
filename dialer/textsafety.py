"""Text that may reach an XML document (TwiML) or a provider: what XML 1.0 cannot carry.

XML 1.0 allows TAB, LF and CR below U+0020, and nothing else there; nor U+FFFE, U+FFFF, or a
lone surrogate. One such character in a ``<Say>`` or ``<Parameter>`` makes the whole document
unparseable, and the provider fails the call.
"""

from __future__ import annotations

import re

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

#: JSON Schema ``pattern`` of text free of them (surrogates cannot be written in a pattern;
#: a JSON string can hold a lone one only as an escape, and it is refused all the same).
XML_SAFE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]*$"


def xml_forbidden(text: str) -> bool:
    """Whether ``text`` holds a character XML 1.0 cannot carry."""
    return _FORBIDDEN.search(text) is not None


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (for text from recipient data,
    rendered into a call's document, where refusing it is no longer possible)."""
    return _FORBIDDEN.sub("", text)
