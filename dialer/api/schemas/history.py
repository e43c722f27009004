"""A campaign's history entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialer.api.schemas.common import Output


class HistoryEntryOut(Output):
    """One change to a campaign.

    ``actor``: ``api-key`` (``api_key_id`` and ``api_key_prefix`` name it), ``operator`` (the
    ``dialer`` command line) or ``system`` (the dialer: a campaign completing, its window
    closing). ``kind`` and ``details``: ``created`` (``fields``, ``recipients``, the
    ``dial_plan``), ``updated`` (``changes``: each field that changed with its ``old`` and
    ``new`` value; text over 200 characters as its ``length`` and ``sha256``), ``action``
    (``action``, ``from``, ``to``, and its options: a stop's ``hang_up``),
    ``recipients_added`` (``count``, ``rejected`` or the ``recipient_list_id``), ``deleted``.
    """

    id: int
    campaign_id: str
    at: datetime
    actor: str
    api_key_id: str | None
    api_key_prefix: str | None
    kind: str
    details: dict[str, Any]
