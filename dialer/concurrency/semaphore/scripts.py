"""The Lua scripts of the Redis lease semaphore: one script per operation, so each is atomic.

Every key is a sorted set: member = holder id, score = lease expiry in seconds of Redis
``TIME`` (never a client's clock). A holder is live while ``score > now``. The exclusive
bound ``(now`` is formatted with ``%.17g``: Lua's ``tostring`` keeps only 14 digits. Scripts
call ``TIME`` before writing, which needs effects replication (the default since Redis 5).

The store's *built marker* is the last key of every acquire and renew: when it is missing,
Redis lost its data (a restart without persistence, a flush, an eviction) and the holders
with it, so the script admits and renews nothing (it answers ``-1``, or ``{-1}``) until the
holders are rebuilt from the database and the marker set again (``FINISH_REBUILD``).
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# One all-or-nothing acquire. ``layers`` lists (key index in KEYS, limit; -1 = no cap).
# Appends to ``out``: the index of the first full key (0 = granted), then n and the n key
# indexes where the holder's own expired lease was replaced (to report them as reaped). Other
# holders' expired leases are not counted but left for ``reap``, to keep acquire cheap.
# A key refuses when it is capped, holds at least its limit of live holders, and the holder is
# not one of them. The live count (ZCOUNT) is taken only when the key's size (ZCARD, expired
# leases included, so never less) reaches the limit, and the holder's score is read only when
# the live count does too, or when ``ZADD NX`` finds the holder already there: a new holder
# costs one ZCARD and one ZADD per key.
_ACQUIRE_ONE = """
local above = '(' .. string.format('%.17g', now)
local function acquire(holder, layers, expiry, out)
  for _, layer in ipairs(layers) do
    local key = KEYS[layer[1]]
    if layer[2] >= 0 and redis.call('ZCARD', key) >= layer[2]
        and redis.call('ZCOUNT', key, above, '+inf') >= layer[2] then
      local score = redis.call('ZSCORE', key, holder)
      if not score or tonumber(score) <= now then
        out[#out + 1] = layer[1]
        out[#out + 1] = 0
        return
      end
    end
  end
  local replaced = {}
  for _, layer in ipairs(layers) do
    local key = KEYS[layer[1]]
    if redis.call('ZADD', key, 'NX', expiry, holder) == 0 then
      local score = tonumber(redis.call('ZSCORE', key, holder))
      if score <= now then replaced[#replaced + 1] = layer[1] end
      if score < expiry then redis.call('ZADD', key, expiry, holder) end
    end
  end
  out[#out + 1] = 0
  out[#out + 1] = #replaced
  for _, i in ipairs(replaced) do out[#out + 1] = i end
end
"""

# KEYS: the layers, then the built marker. ARGV: holder, lease_s, then the limit of each key
# (-1: no cap). The same decision as ``_ACQUIRE_ONE``, written out for one holder so the
# common case builds no table. Returns 0 when granted with nothing replaced, i when KEYS[i] is
# full (nothing changed), the list of the key indexes where the holder's own expired lease was
# replaced (granted), or -1 when the marker is missing (nothing changed).
ACQUIRE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return -1 end
local holder = ARGV[1]
local n = #KEYS - 1
local above
for i = 1, n do
  local cap = tonumber(ARGV[i + 2])
  if cap >= 0 and redis.call('ZCARD', KEYS[i]) >= cap then
    above = above or '(' .. string.format('%.17g', now)
    if redis.call('ZCOUNT', KEYS[i], above, '+inf') >= cap then
      local score = redis.call('ZSCORE', KEYS[i], holder)
      if not score or tonumber(score) <= now then return i end
    end
  end
end
local expiry = now + tonumber(ARGV[2])
local at = string.format('%.17g', expiry)
local replaced
for i = 1, n do
  if redis.call('ZADD', KEYS[i], 'NX', at, holder) == 0 then
    local score = tonumber(redis.call('ZSCORE', KEYS[i], holder))
    if score <= now then
      replaced = replaced or {}
      replaced[#replaced + 1] = i
    end
    if score < expiry then redis.call('ZADD', KEYS[i], at, holder) end
  end
end
return replaced or 0
"""
)

# KEYS: every key of the batch, once, then the built marker. ARGV: lease_s, then per request:
# holder, n, and n pairs (key index, limit). Requests are decided in order. Returns the
# ``out`` of each, in order, or {-1} when the marker is missing (nothing changed).
ACQUIRE_MANY = (
    _NOW
    + _ACQUIRE_ONE
    + """
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return {-1} end
local expiry = now + tonumber(ARGV[1])
local out = {}
local a = 2
while a <= #ARGV do
  local holder = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  local layers = {}
  for j = 1, n do
    layers[j] = {tonumber(ARGV[a + 2 * j]), tonumber(ARGV[a + 2 * j + 1])}
  end
  acquire(holder, layers, expiry, out)
  a = a + 2 + 2 * n
end
return out
"""
)

# KEYS: the holder's keys, then the built marker. ARGV: holder, lease_s. Returns 1 when
# renewed, 0 (nothing changed) when the holder is missing or expired in any key, -1 when the
# marker is missing.
RENEW = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return -1 end
local holder = ARGV[1]
local expiry = now + tonumber(ARGV[2])
local scores = {}
for i = 1, #KEYS - 1 do
  local score = redis.call('ZSCORE', KEYS[i], holder)
  if not score or tonumber(score) <= now then return 0 end
  scores[i] = tonumber(score)
end
for i = 1, #KEYS - 1 do
  if scores[i] < expiry then redis.call('ZADD', KEYS[i], expiry, holder) end
end
return 1
"""
)

# One release. ``indexes`` are the holder's keys (indexes in KEYS). Appends to ``out``: 1 if
# an unexpired slot was given back (else 0), then n and the n key indexes where the lease had
# already expired (removed too, to report them as reaped).
_RELEASE_ONE = """
local function release(holder, indexes, out)
  local live = 0
  local expired = {}
  for _, i in ipairs(indexes) do
    local score = redis.call('ZSCORE', KEYS[i], holder)
    if score then
      redis.call('ZREM', KEYS[i], holder)
      if tonumber(score) > now then live = 1 else expired[#expired + 1] = i end
    end
  end
  out[#out + 1] = live
  out[#out + 1] = #expired
  for _, i in ipairs(expired) do out[#out + 1] = i end
end
"""

# KEYS: the holder's keys. ARGV: holder. The same as ``_RELEASE_ONE`` for one holder, with
# no table in the common case: returns 1 if an unexpired slot was given back (else 0), or, when
# some leases had already expired, the list {live, i...} of that flag and their key indexes.
RELEASE = (
    _NOW
    + """
local holder = ARGV[1]
local live = 0
local expired
for i = 1, #KEYS do
  local score = redis.call('ZSCORE', KEYS[i], holder)
  if score then
    redis.call('ZREM', KEYS[i], holder)
    if tonumber(score) > now then
      live = 1
    else
      expired = expired or {0}
      expired[#expired + 1] = i
    end
  end
end
if expired then
  expired[1] = live
  return expired
end
return live
"""
)

# KEYS: every key of the batch, once. ARGV: per request: holder, n, and n key indexes.
# Returns the ``out`` of each release, in order.
RELEASE_MANY = (
    _NOW
    + _RELEASE_ONE
    + """
local out = {}
local a = 1
while a <= #ARGV do
  local n = tonumber(ARGV[a + 1])
  local indexes = {}
  for j = 1, n do indexes[j] = tonumber(ARGV[a + 1 + j]) end
  release(ARGV[a], indexes, out)
  a = a + 2 + n
end
return out
"""
)

# KEYS[1]. Returns the number of live holders.
COUNT = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.17g', now), '+inf')
"""
)

# KEYS: any. Returns {n, holder * n, n, holder * n...}: the live holders of each key.
SNAPSHOT = (
    _NOW
    + """
local out = {}
local above = '(' .. string.format('%.17g', now)
for _, key in ipairs(KEYS) do
  local live = redis.call('ZRANGEBYSCORE', key, above, '+inf')
  out[#out + 1] = #live
  for _, h in ipairs(live) do out[#out + 1] = h end
end
return out
"""
)

# KEYS: any. Removes expired leases; returns {i, holder, i, holder...}.
REAP = (
    _NOW
    + """
local out = {}
for i, key in ipairs(KEYS) do
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    for _, h in ipairs(expired) do
      out[#out + 1] = i
      out[#out + 1] = h
    end
  end
end
return out
"""
)

# KEYS: the keys to fix. ARGV: lease_s, then for each key: n, n holders to remove, m, m holders
# to add if absent. Expired leases of the keys are removed first. Returns {change, i, holder...}
# where change is 'x' (expired lease removed), '-' (removed) or '+' (added).
# The client decides which holders go (only those of ended attempts, see ``plan_reconcile``);
# the script applies one batch of keys atomically, so no acquire runs between its removals
# and its additions.
RECONCILE = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[1])
local out = {}
local a = 2
for i, key in ipairs(KEYS) do
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    for _, h in ipairs(expired) do
      out[#out + 1] = 'x'
      out[#out + 1] = i
      out[#out + 1] = h
    end
  end
  local n = tonumber(ARGV[a])
  for j = a + 1, a + n do
    if redis.call('ZREM', key, ARGV[j]) == 1 then
      out[#out + 1] = '-'
      out[#out + 1] = i
      out[#out + 1] = ARGV[j]
    end
  end
  a = a + n + 1
  n = tonumber(ARGV[a])
  for j = a + 1, a + n do
    if not redis.call('ZSCORE', key, ARGV[j]) then
      redis.call('ZADD', key, expiry, ARGV[j])
      out[#out + 1] = '+'
      out[#out + 1] = i
      out[#out + 1] = ARGV[j]
    end
  end
  a = a + n + 1
end
return out
"""
)

# KEYS[1]: the rebuild's token key, KEYS[2]: the built marker. ARGV: the rebuild's token.
# Sets the marker only if the token is still the one its rebuild wrote when it began: a flush
# during the rebuild (the token gone with it) or a later rebuild (another token) leaves the
# store unbuilt. Returns 1 when the marker was set.
FINISH_REBUILD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""
