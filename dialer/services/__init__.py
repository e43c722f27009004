"""Application services behind the API: load rows, call the pure policy, persist, in one
transaction each.

The call's path (claim, dial, ingest, end, refill) is :mod:`dialer.calls`; any state change of
an attempt or a recipient, here as there, goes through :mod:`dialer.calls.states`.
"""
