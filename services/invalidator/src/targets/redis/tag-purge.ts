import type { Cluster, Redis } from 'ioredis';
import { tagJournalKey } from '@walpurge/rules';
import { chunk, groupBySlot } from './slot-groups.js';

// The journal's layout is shared with @walpurge/client, which parks members there when it prunes.
export { slotHashTag, tagJournalKey } from '@walpurge/rules';

/**
 * Purging a tag set: every member's key is unlinked and the member removed from the set. The two
 * must not be separate round trips in the order "UNLINK, then SREM": a member the application
 * refills and re-registers (SET key, SADD set member — the SADD is a no-op, the member is still
 * there) between them would be removed from the set while its key stays cached, and the next purge
 * of the tag would miss it. The reverse order loses the member if the process dies between the two.
 */

/**
 * Standalone Redis: one script per SSCAN page unlinks the members' keys and removes exactly those
 * members, atomically. KEYS[1] is the tag set, KEYS[2..n+1] the members' keys; ARGV the members.
 * Members someone else removed meanwhile are harmless (their key is unlinked, SREM is a no-op);
 * members added meanwhile are not in ARGV, so they stay registered.
 */
export const TAG_PAGE_PURGE_SCRIPT = `
redis.call('UNLINK', unpack(KEYS, 2))
return redis.call('SREM', KEYS[1], unpack(ARGV))
`;

/**
 * Redis Cluster: a member's key lives in another slot than the tag set, and a script may only touch
 * keys of one slot, so the page cannot be purged atomically. Instead the page's members are first
 * moved (SMOVE, one script in the tag set's slot) into a journal set in that same slot, then their
 * keys are unlinked, then they are removed from the journal. A refill re-registered in between adds
 * the member to the tag set again (SADD is no longer a no-op): at worst the set holds a member whose
 * key is already gone, which is harmless. A crash between the steps leaves the members in the
 * journal; every purge of the tag drains the journal first, so they are purged on the retry.
 * KEYS[1] tag set, KEYS[2] journal; ARGV the members. Returns how many were moved.
 */
export const TAG_PAGE_JOURNAL_SCRIPT = `
local moved = 0
for i = 1, #ARGV do
  moved = moved + redis.call('SMOVE', KEYS[1], KEYS[2], ARGV[i])
end
return moved
`;

/**
 * Members per script call, whatever redisBatchSize says: the script unpacks its keys and members
 * onto Lua's stack, which holds about 8,000 values (beyond that Redis answers "too many results to
 * unpack" for every call, and the tag could never be purged).
 */
export const MAX_MEMBERS_PER_SCRIPT = 1000;

export interface TagPurgeOptions {
  keyPrefix: string;
  batchSize: number;
  scanCount: number;
}

/** Purges one tag set on a standalone Redis (see TAG_PAGE_PURGE_SCRIPT). */
export async function purgeTagStandalone(
  client: Redis,
  setKey: string,
  options: TagPurgeOptions,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, members] = await client.sscan(setKey, cursor, 'COUNT', options.scanCount);
    cursor = next;
    // Batches bound the script's arguments (Lua's unpack has a stack limit).
    for (const batch of chunk(members, Math.min(options.batchSize, MAX_MEMBERS_PER_SCRIPT))) {
      await client.eval(
        TAG_PAGE_PURGE_SCRIPT,
        batch.length + 1,
        setKey,
        ...batch.map((member) => options.keyPrefix + member),
        ...batch,
      );
    }
  } while (cursor !== '0');
}

/** Purges one tag set on a Redis Cluster (see TAG_PAGE_JOURNAL_SCRIPT). */
export async function purgeTagCluster(
  client: Cluster,
  setKey: string,
  options: TagPurgeOptions,
): Promise<void> {
  const journal = tagJournalKey(setKey, options.keyPrefix);
  // Left over by a purge that died between its steps: those keys may still be cached.
  await drainJournal(client, journal, options);
  let cursor = '0';
  do {
    const [next, members] = await client.sscan(setKey, cursor, 'COUNT', options.scanCount);
    cursor = next;
    for (const batch of chunk(members, options.batchSize)) {
      await client.eval(TAG_PAGE_JOURNAL_SCRIPT, 2, setKey, journal, ...batch);
      await unlinkAcrossSlots(
        client,
        batch.map((member) => options.keyPrefix + member),
        options.batchSize,
      );
      await client.srem(journal, ...batch);
    }
  } while (cursor !== '0');
}

async function drainJournal(client: Cluster, journal: string, options: TagPurgeOptions): Promise<void> {
  let cursor = '0';
  do {
    const [next, members] = await client.sscan(journal, cursor, 'COUNT', options.scanCount);
    cursor = next;
    for (const batch of chunk(members, options.batchSize)) {
      await unlinkAcrossSlots(
        client,
        batch.map((member) => options.keyPrefix + member),
        options.batchSize,
      );
      await client.srem(journal, ...batch);
    }
  } while (cursor !== '0');
}

async function unlinkAcrossSlots(client: Cluster, keys: readonly string[], batchSize: number): Promise<void> {
  await Promise.all(groupBySlot(keys, batchSize).map((batch) => client.unlink(...batch)));
}
