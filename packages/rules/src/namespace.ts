import { randomBytes } from 'node:crypto';
import { parseLsn } from '@walpurge/protocol';

/**
 * Storage contract of versioned key namespaces, shared by the invalidator (which bumps) and
 * @walpurge/client (which composes physical keys from the versions):
 * - The version of namespace `N` is a Redis string at `namespaceKey(prefix, N)` = `<prefix>ns:<N>`.
 * - Its value is `<epoch>:<lsn>`: a random epoch, fresh every time the value changes, and the commit
 *   LSN of the newest change that bumped it as 16 lower-case hex digits (`namespaceVersion('16/B374D848')`
 *   = `00000016b374d848`; fixed width, so the bump script compares strings, never Lua numbers, which
 *   lose LSN bits above 2^53).
 * - Correctness rests on the epoch alone: a value never repeats, so entries composed from an old
 *   value never become reachable again, whatever happens to the key (a bump, an eviction under an
 *   allkeys-* policy, a replayed or late event, a reader creating a missing key).
 * - The LSN part only saves needless bumps: a bump whose commit LSN is not above the stored one is
 *   skipped (a replay, or an older event of another partition arriving late). That is safe for commit
 *   LSNs: a reader that read a version set by a commit at or after L read it after commit L. Events
 *   whose LSN is not their commit's (Debezium input, operator re-purges) bump UNORDERED: always,
 *   storing LSN 0 so the next ordered bump moves the value again.
 * - A reader that finds no version key creates `<epoch>:0000000000000000` (NAMESPACE_INIT_SCRIPT).
 * - The key has no TTL: it would have to outlive every entry composed from it, and with a volatile
 *   eviction policy a key without TTL is never evicted. One small key per namespace value.
 */
export const NAMESPACE_KEY_SEGMENT = 'ns:';

/** A bump version meaning "always bump": the event carries no commit LSN. */
export const UNORDERED_NAMESPACE_VERSION = '';

const LSN_ZERO = '0'.repeat(16);

export function namespaceKey(prefix: string, namespace: string): string {
  return `${prefix}${NAMESPACE_KEY_SEGMENT}${namespace}`;
}

/** A fresh random epoch (URL-safe base64: never contains the `:` separator). */
export function newNamespaceEpoch(): string {
  return `r${randomBytes(9).toString('base64url')}`;
}

/**
 * KEYS[1] = version key, ARGV[1] = a fresh epoch. Returns the version, creating the key as
 * `<epoch>:<LSN 0>` when it does not exist.
 */
export const NAMESPACE_INIT_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then return current end
local created = ARGV[1] .. ':${LSN_ZERO}'
redis.call('SET', KEYS[1], created)
return created
`;

/** An LSN (`X/Y`) as the fixed-width LSN part of a version. */
export function namespaceVersion(lsn: string): string {
  return parseLsn(lsn).toString(16).padStart(16, '0');
}

/**
 * KEYS[1] = version key, ARGV[1] = the event's commit LSN (16 hex digits), or '' (UNORDERED: always
 * bump), ARGV[2] = a fresh epoch. Skips the bump when the stored LSN part is at least ARGV[1];
 * otherwise stores `<fresh epoch>.<server time>:<ARGV[1] or LSN 0>`. A value of another shape is always replaced.
 * Returns 1 when the version moved, 0 when it already was as new or newer.
 */
export const NAMESPACE_BUMP_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current and ARGV[1] ~= '' then
  local stored = string.match(current, '^[^:]+:(%x+)$')
  if stored and string.len(stored) == string.len(ARGV[1]) and stored >= ARGV[1] then
    return 0
  end
end
local lsn = ARGV[1]
if lsn == '' then lsn = '${LSN_ZERO}' end
-- The server's clock joins the caller's epoch: a call resent after a lost reply (ioredis resends
-- unanswered commands on reconnect) stores a value of its own, never the one it stored before.
local now = redis.call('TIME')
redis.call('SET', KEYS[1], ARGV[2] .. '.' .. now[1] .. now[2] .. ':' .. lsn)
return 1
`;
