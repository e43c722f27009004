"""Application services: load rows, call the pure policy, persist, in one transaction each.

The API, the workers and the scheduler all change state through these functions, so a rule
(a counter moves with every transition, a suppressed number is never queued...) lives once.
"""
