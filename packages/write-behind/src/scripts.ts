/**
 * Lua run inside Redis so that each step of the write-behind protocol is atomic. Versions come from a
 * hybrid logical clock: max(last + 1, floor + 1, Redis TIME in µs). `last` is the clock key; `floor`
 * is the highest version the caller has already seen (its process's writes, the row's pending
 * version). Wall clocks can go backwards (a failover to a replica whose clock is behind, or that lost
 * the clock key): the floors keep versions moving forward for every writer that saw the newer ones.
 * (µs since 1970 ≈ 1.8e15 < 2^53: exact in Lua doubles, JavaScript numbers and PostgreSQL bigint.)
 */
const NEXT_VERSION = `
local function nextVersion(clockKey, floor)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = math.max(tonumber(redis.call('GET', clockKey) or '0'), tonumber(floor or '0') or 0)
  if now <= last then now = last + 1 end
  local text = string.format('%.0f', now)
  redis.call('SET', clockKey, text)
  return text, math.floor(tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
end
`;

/**
 * Accept one write-behind write: record it as the row's latest pending value with a fresh version,
 * and decide whether a flush job must be queued (none queued yet, or the queued one failed and this
 * newer value supersedes it). The caller adds the job with the returned id; if it crashes before
 * that, the flusher's reconciler finds the entry through the index and queues it.
 * The entry also collects (field `c`, JSON array) every cache key the row's pending writes were
 * cached under, prefix included: if PostgreSQL refuses the row for good, the flusher purges them.
 * The new version is above the clock, the row's pending version and `versionFloor` (the highest
 * version this client has seen), so versions never go backwards after a failover lost the clock.
 * KEYS: pending, index, clock, stats. ARGV: rowId, table, primaryKeyJson, rowJson, op (u|d),
 * cacheKeysJson, versionFloor.
 * Returns { version, jobId or '' }.
 */
export const ACCEPT_WRITE_SCRIPT = `${NEXT_VERSION}
local rowLast = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local version, nowMs = nextVersion(KEYS[3], math.max(rowLast, tonumber(ARGV[7] or '0') or 0))
redis.call('HSET', KEYS[1], 't', ARGV[2], 'k', ARGV[3], 'r', ARGV[4], 'op', ARGV[5], 'v', version, 'w', nowMs)
if ARGV[6] and ARGV[6] ~= '' and ARGV[6] ~= '[]' then
  local known = redis.call('HGET', KEYS[1], 'c')
  if not known then
    redis.call('HSET', KEYS[1], 'c', ARGV[6])
  else
    local list = cjson.decode(known)
    local seen = {}
    for _, key in ipairs(list) do seen[key] = true end
    for _, key in ipairs(cjson.decode(ARGV[6])) do
      if not seen[key] then table.insert(list, key); seen[key] = true end
    end
    redis.call('HSET', KEYS[1], 'c', cjson.encode(list))
  end
end
redis.call('HSETNX', KEYS[1], 's', nowMs)
redis.call('ZADD', KEYS[2], 'NX', nowMs, ARGV[1])
redis.call('HINCRBY', KEYS[4], 'accepted', 1)
local queued = redis.call('HGET', KEYS[1], 'q')
local failed = redis.call('HGET', KEYS[1], 'f')
if queued and not failed then return { version, '' } end
local jobId = ARGV[1] .. '-' .. version
redis.call('HSET', KEYS[1], 'q', jobId)
redis.call('HDEL', KEYS[1], 'f')
return { version, jobId }
`;

/** A version for write-through writes, from the same clock. KEYS: clock. ARGV: versionFloor. */
export const NEXT_VERSION_SCRIPT = `${NEXT_VERSION}
local version = nextVersion(KEYS[1], ARGV[1])
return version
`;

/**
 * After the row's flushed version committed: delete the pending entry only if no newer write
 * replaced it meanwhile (compare-and-delete). If one did, keep it and name the job that must flush
 * it; its oldest-write time becomes the time the flushed value was read (the newer write came after).
 * KEYS: pending, index. ARGV: flushedVersion, rowId, readAtMs.
 * Returns { 'done' } | { 'gone' } | { 'requeue', jobId }.
 */
export const SETTLE_SCRIPT = `
local version = redis.call('HGET', KEYS[1], 'v')
if not version then return { 'gone' } end
if version == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return { 'done' }
end
local jobId = ARGV[2] .. '-' .. version
redis.call('HSET', KEYS[1], 'q', jobId, 's', ARGV[3])
redis.call('HDEL', KEYS[1], 'f')
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[2])
return { 'requeue', jobId }
`;

/**
 * A flush job failed for good. If the row's value is still the one that failed, remember the failed
 * job on the entry (the entry itself stays: never dropped), so that the next write to the row queues
 * a fresh job instead of waiting behind the failed one. If a newer write was accepted meanwhile (it
 * found this job still queued and so queued none of its own), name the job that must flush it, as
 * SETTLE does: the newer write must not wait for a manual redrive. Nothing happens when the entry
 * already names another job (a redrive or newer job took over).
 * KEYS: pending. ARGV: jobId, failedVersion, rowId.
 * Returns { 'failed' } | { 'gone' } | { 'superseded' } | { 'requeue', jobId }.
 */
export const MARK_FAILED_SCRIPT = `
local version = redis.call('HGET', KEYS[1], 'v')
if not version then return { 'gone' } end
if redis.call('HGET', KEYS[1], 'q') ~= ARGV[1] then return { 'superseded' } end
if version ~= ARGV[2] then
  local jobId = ARGV[3] .. '-' .. version
  redis.call('HSET', KEYS[1], 'q', jobId)
  redis.call('HDEL', KEYS[1], 'f')
  return { 'requeue', jobId }
end
redis.call('HSET', KEYS[1], 'f', ARGV[1])
return { 'failed' }
`;

/**
 * PostgreSQL refused a write-behind value for good: take it out of the cache (cache Redis), so it is
 * not served until TTL. Deleting is not enough: the accepting client writes the cache AFTER it queued
 * the write, so its put of the refused version may land after this purge (or the key may not exist
 * yet) and would then serve the refused value for its TTL. So each key is left holding (or given) a
 * `wv`-only marker at the refused version, which readers see as a miss and which makes that late put
 * fail the version guard (CACHE_PUT_SCRIPT): entries holding the refused version or an older one are
 * replaced by it, missing keys get it, an entry a reader filled from the database (no `wv`) keeps its
 * value and gains the `wv` (and `rf`, as a reader's fill over a marker would; its `ver`, `ft` and `ls`
 * still describe that value, so they stay). A newer accepted value (its own, higher `wv`) stays as it is. The marker
 * lives as long as the entry it replaces, and at least ARGV[2] ms.
 * KEYS: the row's cache keys (prefix included). ARGV: refusedVersion, markerTtlMs. Returns the number
 * of keys that were or now are markers (refused values removed, missing keys guarded).
 */
export const CACHE_PURGE_REFUSED_SCRIPT = `
local refused = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local marked = 0
for i = 1, #KEYS do
  local exists = redis.call('EXISTS', KEYS[i]) == 1
  if exists and redis.call('TYPE', KEYS[i])['ok'] ~= 'hash' then
    -- Not a cache entry: nothing of ours to guard.
  elseif not exists then
    redis.call('HSET', KEYS[i], 'wv', ARGV[1])
    redis.call('PEXPIRE', KEYS[i], ttl)
    marked = marked + 1
  else
    local current = tonumber(redis.call('HGET', KEYS[i], 'wv') or '')
    if current == nil then
      -- rf: the value is the database's, not this version's (the echo purge must not keep it).
      redis.call('HSET', KEYS[i], 'wv', ARGV[1], 'rf', '1')
      -- A hash holding only a reader's lease expires with it (seconds): the guard must outlive it.
      local left = redis.call('PTTL', KEYS[i])
      if left >= 0 and left < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
    elseif current <= refused then
      local left = redis.call('PTTL', KEYS[i])
      redis.call('DEL', KEYS[i])
      redis.call('HSET', KEYS[i], 'wv', ARGV[1])
      redis.call('PEXPIRE', KEYS[i], math.max(left, ttl))
      marked = marked + 1
    end
  end
end
return marked
`;

/** How long a refused value's marker (CACHE_PURGE_REFUSED_SCRIPT) lives at least. */
export const REFUSED_MARKER_TTL_MS = 3_600_000;

/**
 * Version-guarded cache write on the cache Redis, in the read side's entry layout (one hash per key:
 * v = payload, e = soft expiry ms, d = load time ms, ft = when it was stored) plus `wv`, the version
 * of the value. The entry is replaced as a whole, which also drops any read-side lease: a fill that
 * read the database before this write is then rejected. Replacing it also drops a read-side fill's
 * `ver` (a row version the written value may not have) and `ls` (no load produced this value), so
 * the consistency observer never reads an older fill's fields beside the written value. An entry holding a newer version is left alone, so concurrent writers
 * (or a write-through racing a write-behind) never leave an older value behind. A delete leaves a
 * hash with only `wv` (the read side sees a miss) so a late older write cannot re-create the value.
 * KEYS: entries. ARGV: version, op (set|del), payload, softTtlMs, physicalTtlMs (0 = none).
 * Returns the number of entries changed.
 */
export const CACHE_PUT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local version = tonumber(ARGV[1])
local physical = tonumber(ARGV[5])
local changed = 0
for i = 1, #KEYS do
  local current = tonumber(redis.call('HGET', KEYS[i], 'wv') or '0')
  if current < version then
    redis.call('DEL', KEYS[i])
    if ARGV[2] == 'set' then
      redis.call('HSET', KEYS[i], 'v', ARGV[3], 'e', now + tonumber(ARGV[4]), 'd', 0, 'wv', ARGV[1], 'ft', now)
    else
      redis.call('HSET', KEYS[i], 'wv', ARGV[1])
    end
    if physical > 0 then redis.call('PEXPIRE', KEYS[i], physical) end
    changed = changed + 1
  end
end
return changed
`;

/**
 * For the invalidator, on a change event the flusher committed (CDC echo): purge the row's own keys
 * only where the cache does not already hold that version or a newer one. It lives in
 * @walpurge/rules (write-echo.ts), beside the tag-set layout, because the invalidator runs it and
 * does not depend on this package; it relies on this package's entry layout (`wv`, `rf`).
 */
export { ECHO_PURGE_SCRIPT } from '@walpurge/rules';
