"""The Redis call pacer: one GCRA script over every key of a call, timed by Redis ``TIME``."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from dialer.concurrency.rate.base import Rate
from dialer.errors import ConcurrencyError

# KEYS: one per rate. ARGV: interval_s, tolerance_s for each key, in order.
# Returns "0" when a call was taken from every key, else the wait in seconds (nothing taken).
# A key holds its theoretical arrival time and expires once it is in the past (idle = absent).
TRY_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local starts = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local start = tonumber(redis.call('GET', key) or 0)
  if start < now then start = now end
  starts[i] = start
  local w = start - tonumber(ARGV[2 * i]) - now
  if w > wait then wait = w end
end
if wait > 0 then return string.format('%.17g', wait) end
for i, key in ipairs(KEYS) do
  local tat = starts[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', key, string.format('%.17g', tat), 'PX', math.ceil((tat - now) * 1000) + 1)
end
return '0'
"""


class RedisRateLimiter:
    """A :class:`~dialer.concurrency.rate.base.CallRateLimiter` shared through Redis.

    Redis errors surface as :class:`~dialer.errors.ConcurrencyError`. The script is reloaded by
    redis-py when a restart flushed the script cache (``NOSCRIPT``). Losing the keys in a restart
    only forgets recent calls: at most ``burst`` extra calls per key go out right after it.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(TRY_ACQUIRE)

    def try_acquire(self, rates: Sequence[Rate]) -> float:
        args: list[float] = []
        for rate in rates:
            args += [rate.interval_s, rate.tolerance_s]
        try:
            reply = self._script(keys=[rate.key for rate in rates], args=args)
        except redis.RedisError as exc:
            raise ConcurrencyError(f"call pacing store failed: {exc}") from exc
        return float(reply)
