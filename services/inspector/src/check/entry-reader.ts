import type { Cluster, Redis } from 'ioredis';
import { ENTRY_FIELDS } from '@walpurge/client';

/** What a cache key holds, as far as the observer needs it. */
export type EntrySnapshot =
  | { kind: 'absent' }
  /**
   * An SDK entry hash (@walpurge/client) holding a value: the fields the verdict reads, null when
   * missing. A hash without the value field (only a lease: a load in progress; only a write-side
   * delete tombstone) serves nothing stale, so it reads as absent.
   */
  | {
      kind: 'hash';
      version: string | null;
      writeVersion: string | null;
      /** `rf`: a reader filled the value over a write-side marker, so `wv` does not describe it. */
      readerFilledOverWrite: boolean;
      filledAt: number | null;
      loadStartedAt: number | null;
    }
  /** A plain string value, written by other code. */
  | { kind: 'string'; value: string }
  | { kind: 'other'; type: string };

// TYPE then HMGET or GET in one round trip; one key, so it runs on the key's node of a Cluster.
// ARGV[1] is the value field: only tested (HEXISTS), never read, since values can be large.
const READ_ENTRY = `
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'hash' then
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'none'} end
  return {kind, unpack(redis.call('HMGET', KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]))}
elseif kind == 'string' then
  return {kind, redis.call('GET', KEYS[1])}
end
return {kind}`;

const FIELDS = [
  ENTRY_FIELDS.value,
  ENTRY_FIELDS.version,
  ENTRY_FIELDS.writeVersion,
  ENTRY_FIELDS.filledAt,
  ENTRY_FIELDS.loadStartedAt,
  ENTRY_FIELDS.readerFilledOverWrite,
];

const text = (value: unknown): string | null =>
  typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : null;
const millis = (value: unknown): number | null => {
  const raw = text(value);
  if (raw === null || !/^\d+$/.test(raw)) return null;
  return Number(raw);
};

const COMMAND = 'walpurgeInspectReadEntry';
type WithReadEntry = { [COMMAND](key: string, ...fields: string[]): Promise<unknown[]> };

/**
 * The script as a defined command: EVALSHA, with ioredis loading the script on NOSCRIPT (a
 * restarted Redis), instead of sending its text with every read.
 */
function withReadEntry(redis: Redis | Cluster): WithReadEntry {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: READ_ENTRY });
  return redis as unknown as WithReadEntry;
}

/** Reads one key (already prefixed). Throws on Redis errors (the caller counts them). */
export async function readEntry(redis: Redis | Cluster, key: string): Promise<EntrySnapshot> {
  const reply = await withReadEntry(redis)[COMMAND](key, ...FIELDS);
  const kind = text(reply[0]) ?? 'none';
  if (kind === 'none') return { kind: 'absent' };
  if (kind === 'hash')
    return {
      kind: 'hash',
      version: text(reply[1]),
      writeVersion: text(reply[2]),
      filledAt: millis(reply[3]),
      loadStartedAt: millis(reply[4]),
      readerFilledOverWrite: text(reply[5]) !== null,
    };
  if (kind === 'string') {
    const value = text(reply[1]);
    return value === null ? { kind: 'absent' } : { kind: 'string', value };
  }
  return { kind: 'other', type: kind };
}
