import type { Cluster, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from '@walpurge/core';
import { tagJournalKey } from '@walpurge/rules';
import type { CacheRedis } from './cache-redis.js';
import { entryKey, tagSetKey } from './keys.js';
import { LuaScript } from './lua-script.js';
import type { ClientMetrics } from './metrics.js';

export interface TagPruningOptions {
  /** Prune one page of a tag set after this many fills with the tag in this process. Default 100. */
  everyFills?: number;
  /** SSCAN COUNT of that page. Default 200: twice what the fills added, so pruning keeps up. */
  pageSize?: number;
}

/**
 * Standalone Redis: removes the members whose entry no longer exists, atomically with the check, so
 * a lease taken on one of them meanwhile (which re-registers nothing: SADD of a present member is a
 * no-op) cannot lose its registration. KEYS[1] tag set, KEYS[2..n+1] the members' entries; ARGV the
 * members. Returns how many were removed.
 */
const PRUNE_PAGE_SCRIPT = `
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then removed = removed + redis.call('SREM', KEYS[1], ARGV[i]) end
end
return removed
`;

/**
 * Redis Cluster: entries live in other slots than the tag set, so check and removal cannot be one
 * script. Members that looked dead are first parked (SMOVE) in the tag's journal, the set the
 * invalidator's tag purge drains first; then checked again: one whose entry exists now (a lease was
 * taken meanwhile) goes back into the set. A purge running in between still finds it (in the
 * journal), and a process dying in between leaves it there for the next purge to unlink.
 * KEYS[1] tag set, KEYS[2] journal; ARGV members. Returns the members moved.
 */
const PARK_SCRIPT = `
local moved = {}
for i = 1, #ARGV do
  if redis.call('SMOVE', KEYS[1], KEYS[2], ARGV[i]) == 1 then moved[#moved + 1] = ARGV[i] end
end
return moved
`;

const prunePage = new LuaScript(PRUNE_PAGE_SCRIPT);
const park = new LuaScript(PARK_SCRIPT);

/**
 * Keeps tag sets from growing forever. A tag set's TTL is pushed out by every fill with the tag, so
 * a busy tag never expires, and the members of entries that expired are never removed by anyone
 * else (the invalidator removes only the members it purges). Every `everyFills` fills with a tag,
 * the next page of that tag's set (cursor kept per tag) is checked and dead members are removed:
 * each fill adds at most one member, each prune looks at about `pageSize`, so pruning outpaces
 * growth with the default 100 / 200.
 */
export class TagPruner {
  private readonly fills = new LRUCache<string, { count: number; cursor: string }>({ max: 10_000 });
  private readonly running = new Set<string>();
  private readonly everyFills: number;
  private readonly pageSize: number;

  constructor(
    private readonly redis: CacheRedis,
    private readonly prefix: string,
    options: TagPruningOptions,
    private readonly metrics: ClientMetrics,
    private readonly logger: Logger,
    private readonly track: (work: Promise<unknown>) => void,
  ) {
    this.everyFills = options.everyFills ?? 100;
    this.pageSize = options.pageSize ?? 200;
  }

  /** A fill stored an entry with these tags. */
  filled(tags: readonly string[]): void {
    for (const tag of tags) {
      const state = this.fills.get(tag) ?? { count: 0, cursor: '0' };
      state.count += 1;
      this.fills.set(tag, state);
      if (state.count % this.everyFills !== 0 || this.running.has(tag)) continue;
      this.running.add(tag);
      this.track(
        this.prune(tag, state)
          .then((removed) => {
            if (removed > 0) this.metrics.tagMembersPruned.inc(removed);
          })
          .catch((error: unknown) => this.logger.debug({ tag, err: error }, 'tag set pruning failed'))
          .finally(() => this.running.delete(tag)),
      );
    }
  }

  /** Checks one SSCAN page of the tag's set; returns how many members were removed. */
  private async prune(tag: string, state: { cursor: string }): Promise<number> {
    const setKey = tagSetKey(this.prefix, tag);
    const [next, members] = await this.redis.sscan(setKey, state.cursor, 'COUNT', this.pageSize);
    state.cursor = next;
    if (members.length === 0) return 0;
    if (!this.redis.isCluster) {
      const keys = [setKey, ...members.map((member) => entryKey(this.prefix, member))];
      return Number(await prunePage.run(this.redis as Redis, keys, members));
    }
    return this.pruneCluster(this.redis as Cluster, setKey, members);
  }

  private async pruneCluster(cluster: Cluster, setKey: string, members: string[]): Promise<number> {
    const present = await this.existing(cluster, members);
    const suspects = members.filter((_, i) => !present[i]);
    if (suspects.length === 0) return 0;
    const journal = tagJournalKey(setKey, this.prefix);
    const parked = ((await park.run(cluster, [setKey, journal], suspects)) as Buffer[]).map(String);
    if (parked.length === 0) return 0;
    const revived = await this.existing(cluster, parked);
    const back = parked.filter((_, i) => revived[i]);
    if (back.length > 0) await cluster.sadd(setKey, ...back);
    await cluster.srem(journal, ...parked);
    return parked.length - back.length;
  }

  /** EXISTS per member's entry (entries live in many slots: one command each, pipelined by ioredis). */
  private async existing(cluster: Cluster, members: readonly string[]): Promise<boolean[]> {
    const flags = await Promise.all(members.map((member) => cluster.exists(entryKey(this.prefix, member))));
    return flags.map((flag) => flag === 1);
  }
}
