"""Celery app and tasks: dialing through the telephony provider."""
