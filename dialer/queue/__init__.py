"""Where dial and dispatch work goes: Celery in a distributed deployment, threads when embedded.

:class:`~dialer.queue.base.TaskQueue` is the port; :mod:`dialer.queue.celery` sends Celery
tasks (the workers of :mod:`workers` consume them) through Redis or RabbitMQ
(:mod:`dialer.queue.broker` holds what differs), :mod:`dialer.queue.inprocess` runs them on
threads of the embedded scheduler process.
"""
