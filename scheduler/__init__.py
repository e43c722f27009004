"""The dispatch loop: turns running campaigns into enqueued calls."""
