"""What the carrier reads of the TwiML a call's answer URL returns: where a ``<Gather>`` posts a
key, whether the document hangs up, and where its media stream reports. Only these: the
carrier plays no audio.

The documents come from the dialer the carrier serves (a test or a bench); ``xml.etree``
expands no external entities."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def gather_action(document: str) -> str | None:
    """The ``action`` of the document's top-level ``<Gather>`` taking keys, or None."""
    root = _parse(document)
    if root is None:
        return None
    for gather in root.findall("./Gather"):
        if "dtmf" in (gather.get("input") or "dtmf") and gather.get("action"):
            return gather.get("action")
    return None


def hangs_up(document: str) -> bool:
    """Whether the document ends the call (a top-level ``<Hangup/>``)."""
    root = _parse(document)
    return root is not None and root.find("./Hangup") is not None


def stream_callback_of(document: str) -> str | None:
    """The ``statusCallback`` of the document's first ``<Stream>``, if any."""
    root = _parse(document)
    if root is None:
        return None
    for stream in root.iter("Stream"):
        return stream.get("statusCallback")
    return None


def _parse(document: str) -> ET.Element | None:
    try:
        return ET.fromstring(document)
    except ET.ParseError:
        return None
