import { WRITE_BEHIND_DEFAULTS } from '@walpurge/config';
import type { ChangeEvent } from '@walpurge/protocol';

/**
 * CDC echo of write-behind: the layout shared by the flusher, the invalidator and @walpurge/client.
 *
 * - The flusher runs its transactions under a PostgreSQL replication origin (`flusher.replicationOrigin`,
 *   a second replica takes `<name>_2`, …); the listener reports it as `source.origin`.
 * - Its rows carry the write's version in the version column (`flusher.versionColumn`), and the
 *   write-behind client stored the same version in field `wv` of the cache entries it wrote.
 * - For such an event the invalidator purges the row's own keys only where the cache does NOT
 *   already hold that version or a newer one (ECHO_PURGE_SCRIPT): the value the application just
 *   wrote (or deleteBehind's delete marker) stays cached (read-your-writes) with any read-side lease
 *   on it cleared, an entry refilled from the database before the flush (older or no `wv`) is
 *   purged as usual. Patterns, tags and CDN entries (lists, pages) are purged as always.
 */
export interface WriteEchoOptions {
  /** Replication origin of the flusher (`flusher.replicationOrigin`). */
  origin: string;
  /** bigint column holding each row's write version (`flusher.versionColumn`). */
  versionColumn: string;
}

/** Default of `flusher.replicationOrigin`. */
export const WRITE_BEHIND_ORIGIN = WRITE_BEHIND_DEFAULTS.replicationOrigin;

/**
 * Matches `base` and the names further flusher replicas take (`base_2`, `base_3`, …): PostgreSQL
 * lets one session at a time use an origin, so match with this, never by equality. The one
 * definition for the flusher (which takes these names) and the invalidator (which recognises them).
 */
export function isWriteBehindOrigin(
  origin: string | null | undefined,
  base: string = WRITE_BEHIND_ORIGIN,
): boolean {
  if (!origin) return false;
  if (origin === base) return true;
  return origin.startsWith(`${base}_`) && /^[0-9]+$/.test(origin.slice(base.length + 1));
}

/**
 * The version a write-behind commit wrote into the row, or undefined when the event is not the
 * flusher's echo or its version is unknown (a truncate, a delete without REPLICA IDENTITY FULL): the
 * row's keys are then purged unconditionally, which is always safe.
 *
 * For a delete it is one above the version the deleted row held (its old image), which is at most
 * the delete's own. Entries holding it or newer are kept, with their read-side lease cleared:
 * deleteBehind's delete marker (so a late write older than the delete still fails the cache's
 * version guard instead of landing on an empty key and serving the deleted row) and a write newer
 * than the delete (a delayed delete echo must not remove it). A reader that missed on the marker and
 * read the row before the delete committed loses its lease, so its fill cannot land. Older values
 * (refilled before the delete) are purged as usual.
 */
export function writeEchoVersion(event: ChangeEvent, options: WriteEchoOptions): string | undefined {
  if (event.op === 't' || !isWriteBehindOrigin(event.source.origin, options.origin)) return undefined;
  const row = event.op === 'd' ? event.before : event.after;
  const value = row?.[options.versionColumn];
  const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value;
  if (typeof text !== 'string' || !/^[0-9]{1,18}$/.test(text)) return undefined;
  // A delete keeps only what is newer than the deleted row: an entry holding exactly its version
  // holds the deleted value itself (a delete whose marker never reached the cache) and is purged.
  return event.op === 'd' ? (BigInt(text) + 1n).toString() : text;
}

/**
 * The loop shared by the two echo scripts below: for the flusher's own commit of version ARGV[1],
 * purges each entry (KEYS) unless it holds that version or a newer one in field `wv`
 * (@walpurge/client's version-guarded cache write). Purged as usual: entries refilled from the
 * database before the flush (older or no `wv`), entries a reader filled over a delete tombstone
 * (`rf`, see the client's entry layout), keys that are not cache-entry hashes at all, and a `wv`
 * that is not a decimal integer (Lua's tonumber would read `nan`, `inf` or `1e999` as a number
 * no version is below, keeping a stale entry through every later echo). Versions are compared as
 * digit strings, exactly: as doubles, values past 2^53 would compare equal when they are not.
 * An entry kept loses its read-side lease (`lease`, `lx`, and `lt`, the time it was taken), so a
 * fill racing the commit is rejected.
 */
const ECHO_PURGE_LOOP = `
local function digits(text)
  if type(text) ~= 'string' or not string.match(text, '^%d+$') then return nil end
  local trimmed = string.gsub(text, '^0+', '')
  return trimmed
end
local function older(current, version)
  if #current ~= #version then return #current < #version end
  return current < version
end
local version = digits(ARGV[1])
local purged, kept = 0, 0
for i = 1, #KEYS do
  local keep = false
  if version and redis.call('TYPE', KEYS[i])['ok'] == 'hash' then
    local f = redis.call('HMGET', KEYS[i], 'wv', 'rf')
    local current = digits(f[1])
    keep = current ~= nil and f[2] == false and not older(current, version)
  end
  if keep then
    -- A reader's lease taken before this commit may guard a load that read the row before it: its
    -- fill must not land over the value kept here (the fill script checks the lease).
    redis.call('HDEL', KEYS[i], 'lease', 'lx', 'lt')
    kept = kept + 1
  else
    purged = purged + redis.call('UNLINK', KEYS[i])
  end
end
`;

/** The echo purge (see ECHO_PURGE_LOOP). Returns the number of entries purged. */
export const ECHO_PURGE_SCRIPT = `${ECHO_PURGE_LOOP}
return purged
`;

/**
 * The same, as the invalidator runs it: returns { purged, kept }, so entries kept for
 * read-your-writes are counted (walpurge_invalidator_echo_kept_total).
 */
export const ECHO_PURGE_REPORT_SCRIPT = `${ECHO_PURGE_LOOP}
return { purged, kept }
`;
