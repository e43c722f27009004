"""The ASGI entry point for servers: ``uvicorn dialer.api.main:app`` (settings from the env)."""

from __future__ import annotations

from dialer import redaction
from dialer.api.app import create_app
from dialer.settings import load_settings

redaction.install()
app = create_app(load_settings())
