"""The lease semaphore: the interface in ``base``, backends in ``memory`` and ``redis``."""
