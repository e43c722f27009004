"""What the dialer tells its operators: Prometheus metrics and structured logs.

- :mod:`~dialer.observability.metrics`: the metric families, and the one-line recorders the
  call path calls where things happen (cheap: no I/O).
- :mod:`~dialer.observability.campaigns` and :mod:`~dialer.observability.queues`: gauges read
  at scrape time only (the database, the semaphore, the broker).
- :mod:`~dialer.observability.exposition`: the text a scrape gets, the HTTP exporter of workers
  and schedulers, and Prometheus' multiprocess mode.
- :mod:`~dialer.observability.context` and :mod:`~dialer.observability.logs`: the ids bound
  while something is handled, and the JSON or text log lines that carry them.
"""
