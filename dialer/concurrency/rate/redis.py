"""The Redis call pacer: one GCRA script over every key of a call, timed by Redis ``TIME``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import redis

from dialer.concurrency.rate import permits
from dialer.concurrency.rate.base import Rate
from dialer.concurrency.rate.fair import ACTIVE_WINDOW_S, OWED_GRACE_S, TenantShare, account_rate
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

# The same, with the account's rate shared between tenants: :func:`fair.decide` in Lua.
# KEYS: one per rate, then the tenant's share key, the account's active and owed sets.
# ARGV: the number of rates; interval_s, tolerance_s for each; the account rate's index
# (1-based); the tenant; the account's calls per second; ACTIVE_WINDOW_S; OWED_GRACE_S.
FAIR_TRY_ACQUIRE = """
local function fmt(x) return string.format('%.17g', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local base = 2 * n + 1
local acct = tonumber(ARGV[base + 1])
local tenant = ARGV[base + 2]
local per_s = tonumber(ARGV[base + 3])
local window = tonumber(ARGV[base + 4])
local grace = tonumber(ARGV[base + 5])
local share_key, active_key, owed_key = KEYS[n + 1], KEYS[n + 2], KEYS[n + 3]

local starts = {}
local acct_wait, own_wait = 0, 0
for i = 1, n do
  local start = tonumber(redis.call('GET', KEYS[i]) or 0)
  if start < now then start = now end
  starts[i] = start
  local w = start - tonumber(ARGV[2 * i + 1]) - now
  if i == acct then
    if w > acct_wait then acct_wait = w end
  elseif w > own_wait then own_wait = w end
end

redis.call('ZREMRANGEBYSCORE', active_key, '-inf', '(' .. fmt(now - window))
redis.call('ZADD', active_key, fmt(now), tenant)
redis.call('PEXPIRE', active_key, math.ceil(window * 1000) + 1)
local interval = redis.call('ZCARD', active_key) / per_s
redis.call('ZREMRANGEBYSCORE', owed_key, '-inf', fmt(now - grace))
local share_tat = tonumber(redis.call('GET', share_key))

local function refused(w)
  if share_tat == nil or share_tat <= now + w then
    local due = now + w
    local standing = tonumber(redis.call('ZSCORE', owed_key, tenant))
    if standing ~= nil and standing > now and standing < due then due = standing end
    redis.call('ZADD', owed_key, fmt(due), tenant)
  end
  return w
end
local wait, new_share = 0, nil
if own_wait > 0 or acct_wait > 0 then
  wait = refused(math.max(own_wait, acct_wait))
elseif share_tat == nil or share_tat <= now then
  local start = now
  if share_tat ~= nil and share_tat > now then start = share_tat end
  new_share = start + interval
  redis.call('ZREM', owed_key, tenant)
else
  local free = starts[acct] + tonumber(ARGV[2 * acct]) - tonumber(ARGV[2 * acct + 1])
  local due = nil
  local owed = redis.call('ZRANGE', owed_key, 0, -1, 'WITHSCORES')
  for j = 1, #owed, 2 do
    local d = tonumber(owed[j + 1])
    if owed[j] ~= tenant and d < free and (due == nil or d < due) then due = d end
  end
  if due ~= nil then
    local back = due
    if due <= now then back = due + grace end
    wait = refused(math.min(share_tat, back) - now)
  end
end

local last = redis.call('ZRANGE', owed_key, -1, -1, 'WITHSCORES')
if #last == 2 then
  redis.call('PEXPIRE', owed_key, math.ceil((tonumber(last[2]) + grace - now) * 1000) + 1)
end
if wait > 0 then return fmt(wait) end
for i = 1, n do
  local tat = starts[i] + tonumber(ARGV[2 * i])
  redis.call('SET', KEYS[i], fmt(tat), 'PX', math.ceil((tat - now) * 1000) + 1)
end
if new_share ~= nil then
  redis.call('SET', share_key, fmt(new_share), 'PX', math.ceil((new_share - now) * 1000) + 1)
end
return '0'
"""


# KEYS: the permit. ARGV: how close to its instant it is due. Returns "none" when there is no
# permit (never given, used, or lapsed: it expires then), the seconds until its instant when
# not yet due, or "0" when used (deleted).
REDEEM = """
local at = redis.call('GET', KEYS[1])
if not at then return 'none' end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = tonumber(at) - now
if wait > tonumber(ARGV[1]) then return string.format('%.17g', wait) end
redis.call('DEL', KEYS[1])
return '0'
"""

#: Tries of a reservation whose keys another client changed meanwhile, before it gives up.
RESERVE_TRIES = 50


class RedisRateLimiter:
    """A :class:`~dialer.concurrency.rate.base.CallRateLimiter` shared through Redis.

    Redis errors surface as :class:`~dialer.errors.ConcurrencyError`. The scripts are reloaded
    by redis-py when a restart flushed the script cache (``NOSCRIPT``). Losing the keys in a
    restart only forgets recent calls: at most ``burst`` extra calls per key go out right
    after it, and the sharing starts afresh (every tenant entitled).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(TRY_ACQUIRE)
        self._fair_script = client.register_script(FAIR_TRY_ACQUIRE)
        self._redeem = client.register_script(REDEEM)
        self._client = client

    def try_acquire(self, rates: Sequence[Rate], share: TenantShare | None = None) -> float:
        try:
            if share is None:
                reply = self._script(keys=[rate.key for rate in rates], args=_pairs(rates))
            else:
                reply = self._fair_script(
                    keys=[
                        *(rate.key for rate in rates),
                        share.share_key,
                        share.active_key,
                        share.owed_key,
                    ],
                    args=[len(rates), *_pairs(rates), *_fair_args(rates, share)],
                )
        except redis.RedisError as exc:
            raise ConcurrencyError(f"call pacing store failed: {exc}") from exc
        return float(reply)

    def reserve(
        self,
        asks: Sequence[permits.Ask],
        share: TenantShare | None = None,
        *,
        ahead_s: float,
        late_s: float,
    ) -> list[float | None]:
        """The reservation is planned in Python (:func:`permits.reserve`, the memory pacer's
        code) on the keys read under ``WATCH``, and written in one ``MULTI``; a write by any
        other client to those keys in between aborts it, and it is planned again on what
        they hold then. One algorithm, not a Lua copy of it; the keys are read at Redis
        ``TIME``, as the scripts read them."""
        rate_keys = permits.keys_of(asks)
        if share is not None:
            rate_keys.append(share.share_key)
        watched = [*rate_keys, *((share.active_key,) if share else ())]
        try:
            with self._client.pipeline() as pipe:
                for _ in range(RESERVE_TRIES):
                    try:
                        now, state = _read(pipe, watched, rate_keys, share)
                        starts = permits.reserve(state, asks, share, now, ahead_s)
                        pipe.multi()
                        _write(pipe, now, rate_keys, state, share)
                        for ask, at in zip(asks, starts, strict=True):
                            if at is not None:
                                pipe.set(ask.permit_key, repr(at), px=_ms(at + late_s - now))
                        pipe.execute()
                    except redis.WatchError:
                        continue
                    return [None if at is None else max(at - now, 0.0) for at in starts]
        except redis.RedisError as exc:
            raise ConcurrencyError(f"call pacing store failed: {exc}") from exc
        raise ConcurrencyError(f"call pacing: {RESERVE_TRIES} reservations in a row were raced")

    def redeem(self, permit_key: str) -> float | None:
        try:
            reply = self._redeem(keys=[permit_key], args=[permits.DUE_WITHIN_S])
        except redis.RedisError as exc:
            raise ConcurrencyError(f"call pacing store failed: {exc}") from exc
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        return None if text == "none" else float(text)


def _read(
    pipe: Any, watched: Sequence[str], rate_keys: Sequence[str], share: TenantShare | None
) -> tuple[float, permits.PaceState]:
    """Watch the keys, then read them and the server's time (the pipeline runs each command
    at once until ``multi``)."""
    pipe.watch(*watched)
    now = _seconds(pipe.time())
    values = pipe.mget(rate_keys)
    state = permits.PaceState(
        tat={key: float(v) for key, v in zip(rate_keys, values, strict=True) if v is not None}
    )
    if share is not None:
        state.active = _scores(pipe.zrange(share.active_key, 0, -1, withscores=True))
    return now, state


def _write(
    pipe: Any,
    now: float,
    rate_keys: Sequence[str],
    state: permits.PaceState,
    share: TenantShare | None,
) -> None:
    """Queue the writes that make the keys hold ``state`` (idle keys deleted)."""
    for key in rate_keys:
        tat = state.tat.get(key)
        if tat is None or tat <= now:
            pipe.delete(key)
        else:
            pipe.set(key, repr(tat), px=_ms(tat - now))
    if share is None:
        return
    pipe.delete(share.active_key)
    if state.active:
        pipe.zadd(share.active_key, dict(state.active))
        pipe.pexpire(share.active_key, _ms(ACTIVE_WINDOW_S))


def _seconds(time_reply: tuple[int, int]) -> float:
    seconds, micros = time_reply
    return int(seconds) + int(micros) / 1_000_000


def _scores(pairs: Any) -> dict[str, float]:
    return {
        (member.decode() if isinstance(member, bytes) else str(member)): float(score)
        for member, score in pairs
    }


def _ms(seconds: float) -> int:
    """A key's time to live: ``seconds`` rounded up to a whole millisecond, at least 1."""
    return max(math.ceil(seconds * 1000) + 1, 1)


def _pairs(rates: Sequence[Rate]) -> list[float]:
    args: list[float] = []
    for rate in rates:
        args += [rate.interval_s, rate.tolerance_s]
    return args


def _fair_args(rates: Sequence[Rate], share: TenantShare) -> list[float | int | str]:
    account = account_rate(rates, share)
    index = next(i for i, rate in enumerate(rates, start=1) if rate is account)
    return [index, share.tenant, account.per_s, ACTIVE_WINDOW_S, OWED_GRACE_S]
