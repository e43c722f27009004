"""Calls-per-second pacing: the interface in ``base``, backends in ``memory`` and ``redis``."""
