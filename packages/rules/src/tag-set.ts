/**
 * Tag sets: the layout shared by the invalidator and the application SDK (@walpurge/client).
 *
 * - A tag `T` is a Redis SET at key `tagSetKey(prefix, T)` = `<prefix>tag:<T>`.
 * - Its members are cache keys *as the application names them, without the prefix* — the same
 *   names rules use in `redis.keys`. Whoever reads a member prepends the prefix before touching it,
 *   exactly as for rule keys. (With ioredis' `keyPrefix` option the prefix is added to command keys
 *   but never to set members, so storing unprefixed names is what the SDK gets naturally.)
 * - The SDK adds a member (SADD) when it stores an entry with that tag; it never needs to remove
 *   members: the invalidator removes the members it purged (SREM of exactly those members), so a
 *   member added concurrently with a purge survives in the set instead of being lost.
 * - A purge UNLINKs exactly the entry's key: anything that must vanish with an entry (a lease, a
 *   stale-while-revalidate copy) has to live inside that key (e.g. fields of one hash).
 */
export const TAG_SET_SEGMENT = 'tag:';

export function tagSetKey(prefix: string, tag: string): string {
  return `${prefix}${TAG_SET_SEGMENT}${tag}`;
}
