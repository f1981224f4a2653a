/**
 * Lua run atomically inside Redis. Layout of an entry: ONE hash at the entry key, so that the
 * invalidator's plain `UNLINK key` removes the value and any lease together:
 *
 *   v     serialized value (marker byte + payload)
 *   e     soft expiry, Redis clock, epoch ms: after it the value is stale (served only within SWR)
 *   d     delta: how long the loader took, ms (XFetch)
 *   lease token of the caller currently allowed to fill this key
 *   lx    lease expiry, Redis clock, epoch ms (a crashed filler's lease stops blocking others)
 *   lt    when the lease was taken, Redis clock, epoch ms (the fill copies it to ls)
 *   ver   version of the row the value was loaded from (GetOptions.version), as text; a fill
 *         without one removes it, so a refill never keeps an older value's version
 *   ft    when the value was stored (filled, or put by the write side), Redis clock, epoch ms
 *   ls    when the load that produced the value started (its lease was taken), Redis clock, epoch
 *         ms; ls <= ft. ver, ft and ls let the consistency observer tell a purge that never
 *         happened (ft before the commit) from a stale fill (loaded before, stored after it)
 *   wv    version, when the write side (@walpurge/client writes) put the value or a delete tombstone
 *   rf    set when a reader filled a value over a write-side tombstone: the value came from the
 *         database, possibly before the write-behind delete was flushed, so the write side's
 *         version no longer vouches for it (ECHO_PURGE_SCRIPT purges it)
 *
 * The physical TTL (PEXPIRE) is soft TTL + stale-while-revalidate window; a lease on a missing value
 * keeps the hash alive only for the lease TTL. All times come from Redis' own clock (TIME), so
 * application servers with skewed clocks agree on what "expired" means.
 *
 * Tag sets (KEYS[2..]) get the unprefixed key as a member when a lease is TAKEN, not only when the
 * value is stored: a tag purge that runs while the loader is still reading the database then
 * UNLINKs the lease with the key, and the fill that may have read pre-write data is rejected.
 */

const prelude = `
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function extend(k, ms)
  local ttl = redis.call('PTTL', k)
  if ttl == -1 or (ttl >= 0 and ttl < ms) then redis.call('PEXPIRE', k, ms) end
end
local function tag(member, ms)
  for i = 2, #KEYS do
    redis.call('SADD', KEYS[i], member)
    extend(KEYS[i], ms)
  end
end
`;

/**
 * ARGV: token, leaseTtlMs, member.
 * Reply: {1, v, remainingMs, deltaMs} fresh hit
 *        {2, v, remainingMs, deltaMs} stale, someone else is refreshing it
 *        {3, v, remainingMs, deltaMs} stale, the caller now holds the lease and should refresh
 *        {4} miss, the caller now holds the lease and should load and fill
 *        {5, leaseRemainingMs} miss, someone else holds the lease: wait
 */
export const getOrLeaseScript = `${prelude}
local token, leaseTtl, member = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local f = redis.call('HMGET', key, 'v', 'e', 'd', 'lease', 'lx')
local v, e, d, lease, lx = f[1], f[2], f[3], f[4], f[5]
local leaseLeft = 0
if lease and lx then leaseLeft = tonumber(lx) - now end
if v then
  local remaining = tonumber(e) - now
  if remaining > 0 then return {1, v, remaining, d} end
  if leaseLeft > 0 then return {2, v, remaining, d} end
  redis.call('HSET', key, 'lease', token, 'lx', now + leaseTtl, 'lt', now)
  tag(member, leaseTtl)
  return {3, v, remaining, d}
end
if leaseLeft > 0 then return {5, leaseLeft} end
-- The hash may be a write-side delete tombstone (only wv): the lease must not shorten its TTL (nor
-- give it one it did not have), or a late older write could re-create the deleted value once it
-- expired. A lease on nothing lives for the lease TTL.
local ttlBefore = redis.call('PTTL', key)
redis.call('HSET', key, 'lease', token, 'lx', now + leaseTtl, 'lt', now)
if ttlBefore == -2 or (ttlBefore >= 0 and ttlBefore < leaseTtl) then redis.call('PEXPIRE', key, leaseTtl) end
tag(member, leaseTtl)
return {4}
`;

/**
 * Compare-and-set fill. ARGV: token, value, softTtlMs, physicalTtlMs, deltaMs, member[, version].
 * Stores only if the caller's lease is still in the hash: a purge (UNLINK) or a newer lease since the
 * lease was taken means the loaded value may predate a write, so it is rejected. Reply 1 stored, 0 not.
 * Records the fill time (ft), the lease time as the load's start (ls; absent for a lease taken by an
 * older client without lt) and the row version (ver, removed when none is given).
 */
export const fillScript = `${prelude}
if redis.call('HGET', key, 'lease') ~= ARGV[1] then return 0 end
local physical = tonumber(ARGV[4])
local leasedAt = redis.call('HGET', key, 'lt')
redis.call('HSET', key, 'v', ARGV[2], 'e', now + tonumber(ARGV[3]), 'd', ARGV[5], 'ft', now)
if leasedAt then redis.call('HSET', key, 'ls', leasedAt) else redis.call('HDEL', key, 'ls') end
if ARGV[7] then redis.call('HSET', key, 'ver', ARGV[7]) else redis.call('HDEL', key, 'ver') end
redis.call('HDEL', key, 'lease', 'lx', 'lt')
if redis.call('HEXISTS', key, 'wv') == 1 then redis.call('HSET', key, 'rf', '1') end
redis.call('PEXPIRE', key, physical)
tag(ARGV[6], physical)
return 1
`;

/**
 * XFetch early refresh: take the lease on a present value if nobody holds a live one.
 * ARGV: token, leaseTtlMs, member. Reply 1 taken, 0 not.
 */
export const refreshLeaseScript = `${prelude}
local f = redis.call('HMGET', key, 'v', 'lease', 'lx')
if not f[1] then return 0 end
if f[2] and f[3] and tonumber(f[3]) > now then return 0 end
redis.call('HSET', key, 'lease', ARGV[1], 'lx', now + tonumber(ARGV[2]), 'lt', now)
tag(ARGV[3], tonumber(ARGV[2]))
return 1
`;

/**
 * Give a lease back after the loader failed or the lookup's reply was lost, so waiters do not sit
 * out the lease TTL. ARGV: token. Removes the whole key only if it held nothing but the lease: a
 * value or a write-side tombstone (`wv`) stays.
 */
export const releaseLeaseScript = `${prelude}
if redis.call('HGET', key, 'lease') ~= ARGV[1] then return 0 end
redis.call('HDEL', key, 'lease', 'lx', 'lt')
if redis.call('HLEN', key) == 0 then redis.call('UNLINK', key) end
return 1
`;

/**
 * Redis Cluster: a tag set lives in another hash slot than the entry, so a script cannot register
 * the member together with the lease. KEYS[1]: one tag set. ARGV: member, ms (the set lives at least
 * that long). The entry store runs it for each tag right after the lease is taken and before the
 * loader reads the database, so a purge of the tag that could matter to the load (one after a
 * commit the load may not see) finds the member; see EntryStore.
 */
export const tagRegisterScript = `${prelude}
redis.call('SADD', key, ARGV[1])
extend(key, tonumber(ARGV[2]))
return 1
`;
