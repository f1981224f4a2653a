import calculateSlot from 'cluster-key-slot';

/**
 * Tag sets: the layout shared by the invalidator and the application SDK (@walpurge/client).
 *
 * - A tag `T` is a Redis SET at key `tagSetKey(prefix, T)` = `<prefix>tag:<T>`.
 * - Its members are cache keys *as the application names them, without the prefix* — the same
 *   names rules use in `redis.keys`. Whoever reads a member prepends the prefix before touching it,
 *   exactly as for rule keys. (With ioredis' `keyPrefix` option the prefix is added to command keys
 *   but never to set members, so storing unprefixed names is what the SDK gets naturally.)
 * - The SDK adds a member (SADD) when it leases or stores an entry with that tag. The invalidator
 *   removes the members it purged (SREM of exactly those members), so a member added concurrently
 *   with a purge survives in the set instead of being lost. The SDK also prunes members whose entry
 *   is gone (expired, evicted), checking and removing atomically (standalone) or through the tag's
 *   journal (cluster, tagJournalKey), so a member leased meanwhile keeps its registration.
 * - A purge UNLINKs exactly the entry's key: anything that must vanish with an entry (a lease, a
 *   stale-while-revalidate copy) has to live inside that key (e.g. fields of one hash).
 */
export const TAG_SET_SEGMENT = 'tag:';

export function tagSetKey(prefix: string, tag: string): string {
  return `${prefix}${TAG_SET_SEGMENT}${tag}`;
}

/**
 * Redis Cluster: the journal of a tag set, a key in the tag set's hash slot (SMOVE needs both in
 * one slot) where members are parked while their keys are being dealt with, by the invalidator's
 * tag purge and by the SDK's pruning of expired members. Every purge of the tag drains it first
 * (unlinks its members' keys), so a member parked by a process that died mid-way is still purged.
 * Under the key prefix where possible (ACLs often restrict a user to it): a tag set whose name
 * carries a hash tag (`{…}`, e.g. from the prefix) keeps it with a suffix; otherwise the journal
 * gets a hash tag chosen to land in the same slot.
 */
export function tagJournalKey(setKey: string, keyPrefix: string): string {
  const slot = calculateSlot(setKey);
  const tag = slotHashTag(slot);
  const candidates = [
    `${setKey}:purging`,
    `${keyPrefix}{${tag}}${setKey.slice(keyPrefix.length)}:purging`,
    `{${tag}}${setKey}:purging`,
  ];
  // The last candidate always qualifies: its hash tag is its first `{…}`.
  return candidates.find((key) => calculateSlot(key) === slot) as string;
}

let hashTags: string[] | undefined;

/** A short string whose CRC16 lands in `slot`, found once for all slots (about 160k hashes). */
export function slotHashTag(slot: number): string {
  if (hashTags === undefined) {
    const found: string[] = new Array<string>(16_384);
    let missing = 16_384;
    for (let i = 0; missing > 0; i += 1) {
      const candidate = i.toString(36);
      const at = calculateSlot(candidate);
      if (found[at] === undefined) {
        found[at] = candidate;
        missing -= 1;
      }
    }
    hashTags = found;
  }
  return hashTags[slot] as string;
}
