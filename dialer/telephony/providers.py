"""Telephony providers as packages: each one a package under :mod:`dialer.telephony`.

A provider package (``dialer/telephony/<name>/``) owns everything specific to its provider:
the outbound adapter (a :class:`~dialer.telephony.base.TelephonyProvider`), its callbacks
(turned into :class:`~dialer.telephony.events.ProviderEvent` values), their signature check,
its call-control document, and its webhook routes, which the API mounts under
``/webhooks/<name>/``. It exposes one object, ``PACKAGE``, meeting :class:`ProviderPackage`;
``DIALER_PROVIDER=<name>`` (:class:`~dialer.settings.ProviderName`) picks it. See
``docs/providers.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from dialer.settings import ProviderName, Settings
from dialer.telephony.base import CallContext, TelephonyProvider
from dialer.telephony.events import EventSink, ProviderEvent

if TYPE_CHECKING:
    from fastapi import APIRouter


class Inbound(Protocol):
    """What a provider's webhook routes hand their work to (the API process's runtime)."""

    def ingest(self, attempt_id: int, event: ProviderEvent) -> None:
        """Apply one event, committed before the route answers (blocking: run it in a thread)."""
        ...

    def call_context(self, attempt_id: int) -> CallContext | None:
        """What the assistant needs about an answered call (None: no such attempt)."""
        ...

    def opt_out(self, attempt_id: int, digit: str) -> bool:
        """The person on the call pressed the opt-out key ``digit``: its number goes on the
        tenant's do-not-call list, committed before the route answers (blocking: run it in a
        thread). False when there is no such attempt."""
        ...


class ProviderPackage(Protocol):
    """The one object a provider package exposes, as ``PACKAGE``."""

    @property
    def name(self) -> str:
        """The ``DIALER_PROVIDER`` value, and the path under ``/webhooks/``."""
        ...

    @property
    def reports_in_process(self) -> bool:
        """True when its events go to the ``events`` sink :meth:`build` is given (the
        simulator), False when they come by webhook."""
        ...

    def build(
        self, settings: Settings, events: EventSink, clock: Callable[[], datetime]
    ) -> TelephonyProvider:
        """The outbound adapter. ``events`` is where a provider that reports in process (the
        simulator) sends its events; a provider that calls webhooks ignores it."""
        ...

    def pace_account(self, settings: Settings) -> str:
        """The account whose calls-per-second limit a call counts against (e.g. ``twilio:AC1``):
        two providers, or two accounts, never share a pace by accident."""
        ...

    def webhooks(self, settings: Settings, inbound: Inbound) -> APIRouter | None:
        """The routes its callbacks come to, or None when it reports in process."""
        ...


def webhooks_path(name: str) -> str:
    """Where the API mounts the webhook routes of provider ``name``."""
    return f"/webhooks/{name}"


def provider_package(name: ProviderName | str) -> ProviderPackage:
    """The package of provider ``name`` (``dialer.telephony.<name>``)."""
    module = importlib.import_module(f"{__package__}.{ProviderName(name).value}")
    package: ProviderPackage = module.PACKAGE
    return package


def all_packages() -> list[ProviderPackage]:
    """Every provider package there is, in :class:`~dialer.settings.ProviderName` order."""
    return [provider_package(name) for name in ProviderName]


class _NoEvents:
    """The sink of a provider that is only asked questions: it places no call, so it never
    reports one."""

    def deliver(self, attempt_id: str, event: ProviderEvent) -> None:
        raise AssertionError("a provider built for queries places no calls")


def query_provider(settings: Settings, clock: Callable[[], datetime]) -> TelephonyProvider:
    """The configured provider, for questions only (the API asks it about caller numbers)."""
    return provider_package(settings.provider).build(settings, _NoEvents(), clock)
