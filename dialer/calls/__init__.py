"""The path every call takes: claim, place, ingest, end, refill.

- :mod:`~dialer.calls.claiming` (run by :mod:`~dialer.calls.dispatch`): a campaign's due
  recipients screened (:mod:`dialer.policy.screen`), their attempts created, slots taken;
- :mod:`~dialer.calls.placing` (with :mod:`~dialer.calls.gate`, the slot and the pace): the dial
  task screens again, claims the attempt once and asks the provider for the call;
- :mod:`~dialer.calls.ingesting`: the provider's events move the attempt forward, once each;
- :mod:`~dialer.calls.ending`: an end commits, then frees its slots, and says what it freed
  (:mod:`dialer.policy.settle` decides where the recipient goes);
- :mod:`~dialer.calls.refill`: what the entry point does with a freed slot.

:mod:`~dialer.calls.states` is the only writer of attempt and recipient states (and
:mod:`~dialer.calls.counters`, their counts); :mod:`~dialer.calls.resolving` and
:mod:`~dialer.calls.reaper` ask the provider about calls whose fate is unknown.
"""
