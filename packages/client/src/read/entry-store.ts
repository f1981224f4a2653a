import type { CacheRedis } from './cache-redis.js';
import { entryKey, tagSetKey } from './keys.js';
import { LuaScript } from './lua-script.js';
import {
  fillScript,
  getOrLeaseScript,
  refreshLeaseScript,
  releaseLeaseScript,
  tagRegisterScript,
} from './lua-scripts.js';
import { withTimeout } from './timeout.js';

/** What Redis holds for a key, as seen by one atomic look-and-maybe-lease. */
export type LookupResult =
  | { kind: 'hit'; payload: Buffer; remainingMs: number; deltaMs: number }
  /** Soft-expired value inside the stale window; `leased` says whether this caller must refresh it. */
  | { kind: 'stale'; payload: Buffer; remainingMs: number; deltaMs: number; leased: boolean }
  /** Nothing stored; this caller holds the lease and is the one to load. */
  | { kind: 'leased' }
  /** Nothing stored; another caller is loading it. */
  | { kind: 'wait'; leaseRemainingMs: number };

export interface FillInput {
  key: string;
  token: string;
  payload: Buffer;
  softTtlMs: number;
  physicalTtlMs: number;
  deltaMs: number;
  tags: readonly string[];
  /** The row's version as text (entry field `ver`); without one the fill removes any older `ver`. */
  version?: string;
}

const getOrLease = new LuaScript(getOrLeaseScript);
const fill = new LuaScript(fillScript);
const refreshLease = new LuaScript(refreshLeaseScript);
const releaseLease = new LuaScript(releaseLeaseScript);
const tagRegister = new LuaScript(tagRegisterScript);

/**
 * Redis side of the read path: one round trip per operation on a standalone Redis, each bounded by
 * `timeoutMs`.
 *
 * On a Redis Cluster, a script may only touch keys of one hash slot, and an entry's tag sets live in
 * other slots (a tag groups keys from everywhere). The entry scripts then get the entry alone (the
 * entry and its lease are one hash: one slot, whatever the key), and each tag set is handled in its
 * own slot by tagRegisterScript: right after a lease is taken — before the loader reads the
 * database, so a purge of the tag after a commit the load may have missed finds the member and
 * UNLINKs the lease — and again after a fill, so the set lives as long as the entry.
 */
export class EntryStore {
  constructor(
    private readonly redis: CacheRedis,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  private get splitTags(): boolean {
    return this.redis.isCluster;
  }

  async lookup(
    key: string,
    token: string,
    leaseTtlMs: number,
    tags: readonly string[],
  ): Promise<LookupResult> {
    const reply = await this.run(getOrLease, 'get', key, tags, [token, leaseTtlMs, key]);
    const result = parseLookup(reply);
    const leased = result.kind === 'leased' || (result.kind === 'stale' && result.leased);
    if (leased) await this.registerLeased(key, token, tags, leaseTtlMs);
    return result;
  }

  async fill(input: FillInput): Promise<boolean> {
    const args = [
      input.token,
      input.payload,
      input.softTtlMs,
      input.physicalTtlMs,
      Math.round(input.deltaMs),
      input.key,
    ];
    if (input.version !== undefined) args.push(input.version);
    const stored = (await this.run(fill, 'fill', input.key, input.tags, args)) === 1;
    if (stored && this.splitTags && input.tags.length > 0) {
      try {
        await this.registerTags(input.key, input.tags, input.physicalTtlMs);
      } catch (error) {
        // A tag set that may expire before the entry would let a purge of the tag miss it.
        await this.redis.unlink(entryKey(this.prefix, input.key)).catch(() => undefined);
        throw error;
      }
    }
    return stored;
  }

  async takeRefreshLease(
    key: string,
    token: string,
    leaseTtlMs: number,
    tags: readonly string[],
  ): Promise<boolean> {
    const won = (await this.run(refreshLease, 'refresh lease', key, tags, [token, leaseTtlMs, key])) === 1;
    if (won) await this.registerLeased(key, token, tags, leaseTtlMs);
    return won;
  }

  async releaseLease(key: string, token: string): Promise<void> {
    await this.run(releaseLease, 'release lease', key, [], [token]);
  }

  /** Cluster: registers a lease just taken in its tag sets; gives the lease back if that fails. */
  private async registerLeased(
    key: string,
    token: string,
    tags: readonly string[],
    leaseTtlMs: number,
  ): Promise<void> {
    if (!this.splitTags || tags.length === 0) return;
    try {
      await this.registerTags(key, tags, leaseTtlMs);
    } catch (error) {
      // Loading without the registration could store a value no purge of the tag would remove.
      await this.releaseLease(key, token).catch(() => undefined);
      throw error;
    }
  }

  private async registerTags(key: string, tags: readonly string[], ttlMs: number): Promise<void> {
    await withTimeout(
      Promise.all(
        tags.map((tag) =>
          tagRegister.run(this.redis, [tagSetKey(this.prefix, tag)], [key, Math.round(ttlMs)]),
        ),
      ),
      this.timeoutMs,
      'tag registration',
    );
  }

  private run(
    script: LuaScript,
    what: string,
    key: string,
    tags: readonly string[],
    args: Array<string | Buffer | number>,
  ): Promise<unknown> {
    const keys = [entryKey(this.prefix, key)];
    if (!this.splitTags) keys.push(...tags.map((tag) => tagSetKey(this.prefix, tag)));
    return withTimeout(script.run(this.redis, keys, args), this.timeoutMs, what);
  }
}

export function parseLookup(reply: unknown): LookupResult {
  if (!Array.isArray(reply)) throw new Error(`unexpected reply from the lookup script: ${typeof reply}`);
  const [code, payload, remaining, delta] = reply as unknown[];
  switch (code) {
    case 1:
    case 2:
    case 3: {
      if (!Buffer.isBuffer(payload)) throw new Error('lookup script returned a value that is not bytes');
      const remainingMs = Number(remaining);
      const deltaMs = Number(Buffer.isBuffer(delta) ? delta.toString() : delta);
      if (code === 1) return { kind: 'hit', payload, remainingMs, deltaMs };
      return { kind: 'stale', payload, remainingMs, deltaMs, leased: code === 3 };
    }
    case 4:
      return { kind: 'leased' };
    case 5:
      return { kind: 'wait', leaseRemainingMs: Number(payload) };
    default:
      throw new Error(`unexpected code from the lookup script: ${String(code)}`);
  }
}
