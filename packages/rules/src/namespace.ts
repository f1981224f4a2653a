import { parseLsn } from '@walpurge/protocol';

/**
 * Storage contract of versioned key namespaces, shared by the invalidator (which bumps) and
 * @walpurge/client (which composes physical keys from the versions):
 * - The version of namespace `N` is a Redis string at `namespaceKey(prefix, N)` = `<prefix>ns:<N>`.
 * - Its value is the commit LSN of the newest change that bumped it, as 16 lower-case hex digits
 *   (`namespaceVersion('16/B374D848')` = `00000016b374d848`). Fixed width, so byte-wise string
 *   order is numeric order: the bump script compares strings, never Lua numbers (doubles, which
 *   lose LSN bits above 2^53).
 * - A reader that finds no version key creates one holding a random epoch (NAMESPACE_INIT_SCRIPT,
 *   `r` + random characters: another width than an LSN, so the next bump always replaces it). A
 *   missing key is therefore never read as a fixed version: had it been evicted (allkeys-*
 *   policies), a fixed default would make entries stored under that default before the first
 *   bump reachable again; a fresh epoch makes them unreachable.
 * - The bump sets the key only when the new version is greater (NAMESPACE_BUMP_SCRIPT): a replayed
 *   event, or an older event of another partition arriving late, never moves it backwards. That
 *   is enough: every reader that read a version ≥ an event's LSN read it after that commit.
 * - The key has no TTL: it would have to outlive every entry composed from it, and with a volatile
 *   eviction policy a key without TTL is never evicted. One small key per namespace.
 */
export const NAMESPACE_KEY_SEGMENT = 'ns:';

export function namespaceKey(prefix: string, namespace: string): string {
  return `${prefix}${NAMESPACE_KEY_SEGMENT}${namespace}`;
}

/**
 * KEYS[1] = version key, ARGV[1] = a random epoch. Returns the version, creating the key with the
 * epoch when it does not exist (see above).
 */
export const NAMESPACE_INIT_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/** An LSN (`X/Y`) as the fixed-width version text of the storage contract. */
export function namespaceVersion(lsn: string): string {
  return parseLsn(lsn).toString(16).padStart(16, '0');
}

/**
 * KEYS[1] = version key, ARGV[1] = new version (16 hex digits). Sets it only if greater, compared
 * as strings (fixed width, see above; a reader's random epoch or any value of another width is
 * always replaced). Returns 1 when the version moved, 0 when it already was as new or newer.
 */
export const NAMESPACE_BUMP_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current and string.len(current) == string.len(ARGV[1]) and current >= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;
