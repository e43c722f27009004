"""Entry module for ``celery -A workers.app worker -Q dial,events`` (or ``dialer worker``).

Reads the settings at import, as Celery's ``-A`` needs a module-level app; everything else
lives in :mod:`workers.celery_app`.
"""

from __future__ import annotations

from dialer.settings import load_settings
from workers.celery_app import create_worker

app = create_worker(load_settings()).celery
